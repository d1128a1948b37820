// Group commit (daemon::group_commit over a real state store): the decisions
// that join while the event loop works through one turn's handlers are
// written in ONE transaction, nothing of them is visible before it, and a
// failure writes none of them. Transactions are counted by the store
// (importwatch_state_commits_total), not timed.
#define BOOST_TEST_MODULE group_commit
#include <boost/test/unit_test.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/testing.hpp"
#include "core/event.hpp"
#include "daemon/group_commit.hpp"
#include "store/state_store.hpp"

using namespace importwatch;
using store::state_store;

namespace {

core::sys_ms at(std::int64_t ms) { return core::sys_ms{std::chrono::milliseconds{ms}}; }

using result = std::optional<core::expected<store::commit_report>>;

/// One watch's decision (a status, one event to webhook "ops"), committed
/// through the group from its own coroutine, as a poll does.
asio::awaitable<void> commit_one(daemon::group_commit& group, std::string key, std::uint64_t sequence,
                                 std::string event_id, result& out) {
    core::watch_state state;
    state.status = "in_progress";
    state.sequence = sequence;
    state.status_since = at(1000);
    core::event e;
    e.id = std::move(event_id);
    e.type = "importwatch.import.status_changed";
    e.sequence = sequence;
    e.body = R"({"id":")" + e.id + R"("})";
    std::vector<store::routed_event> routed{{&e, {{"ops", "application/cloudevents+json", e.body}}}};
    std::optional<std::string> const import = R"({"status":"in_progress"})";
    std::string const name = key + "-name";
    store::commit_request const request{key, name, &state, &routed, &import};
    out = co_await group.commit(request);
}

struct fixture {
    testing::temp_dir tmp;
    std::unique_ptr<state_store> st;
    asio::io_context ioc;
    std::unique_ptr<daemon::group_commit> group;

    fixture() {
        auto s = state_store::open(tmp.path().string(), store::open_mode::daemon);
        BOOST_TEST_REQUIRE(s.has_value(), (s ? std::string() : s.error()));
        st = std::move(*s);
        group = std::make_unique<daemon::group_commit>(ioc.get_executor(), *st);
    }

    void spawn(std::string key, std::uint64_t sequence, std::string event_id, result& out) {
        asio::co_spawn(ioc, commit_one(*group, std::move(key), sequence, std::move(event_id), out), asio::detached);
    }

    /// Runs handlers one at a time until `n` commits wait in the group (or
    /// something was written): what the loop does before the flush it posted.
    void gather(std::size_t n) {
        for (int i = 0; i < 100 && group->pending() < n && st->decision_transactions() == 0; ++i) ioc.run_one();
    }

    std::size_t outbox_rows() {
        auto rows = st->list_outbox();
        BOOST_TEST_REQUIRE(rows.has_value());
        return rows->size();
    }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(group_commit, fixture)

// Four polls' decisions joining in one turn: nothing of them is in the
// database (not a watch row, not an outbox row the dispatcher could
// deliver) until the flush, which writes all four in one transaction.
BOOST_AUTO_TEST_CASE(decisions_that_complete_together_share_one_transaction) {
    std::vector<result> results(4);
    for (std::size_t i = 0; i < results.size(); ++i)
        spawn("p/e/s/w" + std::to_string(i), 1, "ev-" + std::to_string(i), results[i]);
    gather(4);
    BOOST_TEST(group->pending() == 4u);
    BOOST_TEST(st->decision_transactions() == 0u);
    BOOST_TEST(outbox_rows() == 0u);
    BOOST_TEST(st->delivery_heads("ops", 10)->empty());
    BOOST_TEST(st->load_watches()->empty());
    for (auto const& r : results) BOOST_TEST(!r.has_value());   // nobody woke before the commit

    ioc.run();
    for (auto const& r : results) {
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->has_value());
    }
    BOOST_TEST(st->decision_transactions() == 1u);
    BOOST_TEST(st->decisions_committed() == 4u);
    BOOST_TEST(outbox_rows() == 4u);
    BOOST_TEST(st->load_watches()->size() == 4u);
    BOOST_TEST(group->pending() == 0u);

    // One alone later: a transaction of its own.
    result lone;
    spawn("p/e/s/w0", 2, "ev-lone", lone);
    ioc.restart();
    ioc.run();
    BOOST_TEST_REQUIRE(lone.has_value());
    BOOST_TEST(lone->has_value());
    BOOST_TEST(st->decision_transactions() == 2u);
    BOOST_TEST(st->decisions_committed() == 5u);
    BOOST_TEST(st->load_watches()->at("p/e/s/w0").sequence == 2u);
}

// One member the database refuses (its event id is taken already): the
// whole group rolls back, every member gets the error and none of them is
// in the database. The store takes the next group as usual.
BOOST_AUTO_TEST_CASE(a_failed_group_writes_none_of_its_members) {
    result first;
    spawn("p/e/s/old", 1, "taken", first);
    ioc.run();
    BOOST_TEST_REQUIRE((first && first->has_value()));
    BOOST_TEST(st->decision_transactions() == 1u);

    std::vector<result> results(3);
    spawn("p/e/s/a", 1, "ev-a", results[0]);
    spawn("p/e/s/b", 1, "taken", results[1]);   // the same event id for the same webhook
    spawn("p/e/s/c", 1, "ev-c", results[2]);
    ioc.restart();
    ioc.run();
    for (auto const& r : results) {
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST_REQUIRE(!r->has_value());
        BOOST_TEST(r->error().rfind("commit: ", 0) == 0, r->error());
    }
    BOOST_TEST(st->decision_transactions() == 1u);
    BOOST_TEST(st->decisions_committed() == 1u);
    BOOST_TEST(outbox_rows() == 1u);
    auto watches = st->load_watches();
    BOOST_TEST(watches->size() == 1u);
    BOOST_TEST(watches->count("p/e/s/old") == 1u);

    std::vector<result> again(2);
    spawn("p/e/s/a", 1, "ev-a", again[0]);
    spawn("p/e/s/c", 1, "ev-c", again[1]);
    ioc.restart();
    ioc.run();
    for (auto const& r : again) BOOST_TEST((r && r->has_value()));
    BOOST_TEST(st->decision_transactions() == 2u);
    BOOST_TEST(outbox_rows() == 3u);
}

// flush() (a reload before it reads stored states, shutdown) writes what is
// gathered at once; the members wake afterwards, and the flush that was
// posted finds nothing left to write.
BOOST_AUTO_TEST_CASE(flush_writes_the_gathered_group_at_once) {
    std::vector<result> results(2);
    spawn("p/e/s/a", 1, "ev-a", results[0]);
    spawn("p/e/s/b", 1, "ev-b", results[1]);
    gather(2);
    BOOST_TEST_REQUIRE(group->pending() == 2u);
    group->flush();
    BOOST_TEST(group->pending() == 0u);
    BOOST_TEST(st->decision_transactions() == 1u);
    BOOST_TEST(st->load_watches()->size() == 2u);
    BOOST_TEST(outbox_rows() == 2u);
    ioc.run();
    for (auto const& r : results) BOOST_TEST((r && r->has_value()));
    BOOST_TEST(st->decision_transactions() == 1u);
}

// A commit whose coroutine is gone before the flush (the event loop torn
// down at exit) leaves the group: nothing of it is written, nothing dangles.
BOOST_AUTO_TEST_CASE(a_commit_abandoned_before_the_flush_is_not_written) {
    result abandoned;
    {
        auto loop = std::make_unique<asio::io_context>();
        daemon::group_commit other(loop->get_executor(), *st);
        asio::co_spawn(*loop, commit_one(other, "p/e/s/gone", 1, "ev-gone", abandoned), asio::detached);
        for (int i = 0; i < 100 && other.pending() == 0; ++i) loop->run_one();
        BOOST_TEST_REQUIRE(other.pending() == 1u);
        loop.reset();   // destroys the suspended coroutine and the posted flush
        BOOST_TEST(other.pending() == 0u);
        other.flush();
    }
    BOOST_TEST(!abandoned.has_value());
    BOOST_TEST(st->decision_transactions() == 0u);
    BOOST_TEST(outbox_rows() == 0u);
    BOOST_TEST(st->load_watches()->empty());
}

BOOST_AUTO_TEST_SUITE_END()
