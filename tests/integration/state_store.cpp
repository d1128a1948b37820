#define BOOST_TEST_MODULE state_store
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/testing.hpp"
#include "core/event.hpp"
#include "store/state_store.hpp"

using namespace importwatch;
using namespace std::chrono_literals;
using store::open_mode;
using store::state_store;
using outcome = store::state_store::outcome;
namespace fs = std::filesystem;

namespace {

core::sys_ms at(std::int64_t ms) { return core::sys_ms{std::chrono::milliseconds{ms}}; }

core::event make_event(std::string id, std::uint64_t sequence, std::string type = "importwatch.import.status_changed") {
    core::event e;
    e.id = std::move(id);
    e.type = std::move(type);
    e.sequence = sequence;
    e.body = R"({"id":")" + e.id + R"(","seq":)" + std::to_string(sequence) + "}";
    return e;
}

core::watch_state state_with(std::string status, std::uint64_t sequence) {
    core::watch_state s;
    s.status = std::move(status);
    s.sequence = sequence;
    s.status_since = at(1000 * static_cast<std::int64_t>(sequence));
    return s;
}

std::unique_ptr<state_store> open_or_die(std::string const& dir, open_mode mode = open_mode::daemon) {
    auto s = state_store::open(dir, mode);
    BOOST_TEST_REQUIRE(s.has_value(), (s ? std::string() : s.error()));
    return std::move(*s);
}

// An event routed to `webhooks` in the default format: each gets its CloudEvent.
store::routed_event routed_to(core::event const& e, std::vector<std::string> const& webhooks) {
    store::routed_event r{&e, {}};
    for (auto const& w : webhooks) r.payloads.push_back({w, "application/cloudevents+json", e.body});
    return r;
}

// Commits one event per sequence in [from, to] for `watch` to every webhook given.
void commit_events(state_store& st, std::string const& watch, std::uint64_t from, std::uint64_t to,
                   std::vector<std::string> const& webhooks, core::sys_ms now) {
    for (auto seq = from; seq <= to; ++seq) {
        auto e = make_event(watch + "-ev" + std::to_string(seq), seq);
        std::vector<store::routed_event> routed{routed_to(e, webhooks)};
        auto r = st.commit(watch, watch + "-name", state_with("in_progress", seq), routed, now);
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error()));
    }
}

// The heads of every webhook that has rows, none left out by a limit.
core::expected<std::vector<store::delivery>> all_heads(state_store& st) {
    auto rows = st.list_outbox();
    if (!rows) return core::fail(rows.error());
    std::set<std::string> webhooks;
    for (auto const& d : *rows) webhooks.insert(d.webhook);
    std::vector<store::delivery> out;
    for (auto const& w : webhooks) {
        auto heads = st.delivery_heads(w, std::numeric_limits<std::size_t>::max());
        if (!heads) return heads;
        out.insert(out.end(), heads->begin(), heads->end());
    }
    return out;
}

int sqlite_exec(std::string const& path, std::string const& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
}

} // namespace

BOOST_AUTO_TEST_SUITE(state_store_suite)

BOOST_AUTO_TEST_CASE(creates_dir_0700_and_round_trips_watch_states) {
    testing::temp_dir tmp;
    auto dir = (tmp.path() / "nested" / "state").string();
    auto const old_umask = ::umask(0);   // the mode must not depend on the umask
    auto st = open_or_die(dir + "/");
    ::umask(old_umask);
    BOOST_TEST(fs::equivalent(st->path(), dir + "/importwatch.db"));
    struct stat sb {};
    BOOST_TEST_REQUIRE(::stat(dir.c_str(), &sb) == 0);
    BOOST_TEST((sb.st_mode & 0777) == 0700);

    core::watch_state a;
    a.status = "in_progress";
    std::string const import = R"({"id":"x","status":"in_progress","files":[{"filename":"b.csv","status":"done"},)"
                               R"({"filename":"a.csv","status":"pending"}]})";
    a.has_import = true;
    a.status_since = at(1'700'000'000'123);
    a.sequence = 7;
    a.failure = core::watch_failure{"forbidden", 403, "HTTP 403: no access"};
    a.stall_reported = true;
    a.error_streak = 3;   // in memory only: must not come back

    core::watch_state b;   // before the first observation
    b.failure = core::watch_failure{"invalid_response", std::nullopt, "malformed JSON"};

    BOOST_TEST_REQUIRE(st->commit("p/e/s/a", "watch-a", a, {}, at(5), import).has_value());
    BOOST_TEST_REQUIRE(st->commit("p/e/s/b", "watch-b", b, {}, at(5)).has_value());

    auto loaded = st->load_watches();
    BOOST_TEST_REQUIRE(loaded.has_value());
    BOOST_TEST_REQUIRE(loaded->size() == 2u);
    auto const& la = loaded->at("p/e/s/a");
    BOOST_TEST((la.status == a.status));
    BOOST_TEST(la.has_import);
    BOOST_TEST(*st->load_import("p/e/s/a") == import);
    BOOST_TEST((la.status_since == a.status_since));
    BOOST_TEST(la.sequence == 7u);
    BOOST_TEST((la.failure == a.failure));
    BOOST_TEST(la.stall_reported);
    BOOST_TEST(la.error_streak == 0);
    BOOST_TEST_REQUIRE(la.files.size() == 2u);
    BOOST_TEST(la.files[0].filename == "a.csv");
    BOOST_TEST(la.files[1].status == "done");

    auto const& lb = loaded->at("p/e/s/b");
    BOOST_TEST(!lb.status.has_value());
    BOOST_TEST(!lb.has_import);
    BOOST_TEST(st->load_import("p/e/s/b")->empty());
    BOOST_TEST(st->load_import("p/e/s/never")->empty());
    BOOST_TEST(lb.files.empty());
    BOOST_TEST_REQUIRE(lb.failure.has_value());
    BOOST_TEST(!lb.failure->http_status.has_value());
    BOOST_TEST(lb.failure->reason == "invalid_response");

    // An update replaces the row; a cleared failure comes back cleared.
    a.failure.reset();
    a.stall_reported = false;
    a.sequence = 8;
    BOOST_TEST_REQUIRE(st->commit("p/e/s/a", "renamed", a, {}, at(6)).has_value());
    loaded = st->load_watches();
    BOOST_TEST(!loaded->at("p/e/s/a").failure.has_value());
    BOOST_TEST(!loaded->at("p/e/s/a").stall_reported);
    BOOST_TEST(loaded->at("p/e/s/a").sequence == 8u);
    // Committed without an Import: the stored one stays, files and all.
    BOOST_TEST(loaded->at("p/e/s/a").has_import);
    BOOST_TEST(loaded->at("p/e/s/a").files.size() == 2u);
    BOOST_TEST(*st->load_import("p/e/s/a") == import);

    // A new Import replaces it.
    std::string const next = R"({"id":"x","status":"complete"})";
    BOOST_TEST_REQUIRE(st->commit("p/e/s/a", "renamed", a, {}, at(7), next).has_value());
    BOOST_TEST(*st->load_import("p/e/s/a") == next);
    BOOST_TEST(st->load_watches()->at("p/e/s/a").files.empty());
}

BOOST_AUTO_TEST_CASE(load_watches_by_key_reads_only_those_asked_for) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    core::watch_state a;
    a.status = "ready";
    a.has_import = true;
    a.sequence = 4;
    BOOST_TEST_REQUIRE(st->commit("p/e/s/a", "a", a, {}, at(5),
                                  R"({"id":"a","status":"ready","files":[{"filename":"x.csv","status":"done"}]})")
                           .has_value());
    core::watch_state b;
    b.sequence = 9;
    BOOST_TEST_REQUIRE(st->commit("p/e/s/b", "b", b, {}, at(5)).has_value());

    auto some = st->load_watches(std::vector<std::string>{"p/e/s/a", "p/e/s/never"});
    BOOST_TEST_REQUIRE(some.has_value());
    BOOST_TEST_REQUIRE(some->size() == 1u);   // b not asked for, "never" not stored
    auto const& la = some->at("p/e/s/a");
    auto const all = st->load_watches();
    BOOST_TEST_REQUIRE(all.has_value());
    auto const& full = all->at("p/e/s/a");   // the same row, read by the full scan
    BOOST_TEST((la.status == full.status));
    BOOST_TEST(la.has_import);
    BOOST_TEST(full.has_import);
    BOOST_TEST(la.sequence == 4u);
    BOOST_TEST_REQUIRE(la.files.size() == 1u);
    BOOST_TEST(la.files[0].filename == "x.csv");
    BOOST_TEST(st->load_watches(std::vector<std::string>{})->empty());
}

BOOST_AUTO_TEST_CASE(commit_writes_one_outbox_row_per_event_and_webhook) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    auto e1 = make_event("id-1", 1);
    auto e2 = make_event("id-2", 2, "importwatch.import.file_status_changed");
    std::vector<store::routed_event> routed{routed_to(e1, {"ops", "audit"}), routed_to(e2, {"ops"})};
    BOOST_TEST_REQUIRE(st->commit("p/e/s/i", "w", state_with("ready", 2), routed, at(42'000)).has_value());

    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows.has_value());
    BOOST_TEST_REQUIRE(rows->size() == 3u);
    // Ordered by webhook, watch, sequence.
    BOOST_TEST((*rows)[0].webhook == "audit");
    BOOST_TEST((*rows)[1].webhook == "ops");
    BOOST_TEST((*rows)[1].sequence == 1u);
    BOOST_TEST((*rows)[2].sequence == 2u);
    auto const& r = (*rows)[2];
    BOOST_TEST(r.event_id == "id-2");
    BOOST_TEST(r.event_type == "importwatch.import.file_status_changed");
    BOOST_TEST(r.body == e2.body);
    BOOST_TEST(r.watch_path == "p/e/s/i");
    BOOST_TEST(r.watch_name == "w");
    BOOST_TEST(r.attempts == 0);
    BOOST_TEST((r.committed == at(42'000)));
    BOOST_TEST((r.next_attempt == at(42'000)));
    BOOST_TEST(!r.dead);

    auto backlog = st->backlog();
    BOOST_TEST_REQUIRE(backlog.has_value());
    BOOST_TEST(backlog->at("ops").pending == 2u);
    BOOST_TEST(backlog->at("audit").pending == 1u);
    BOOST_TEST((backlog->at("ops").oldest == at(42'000)));
    BOOST_TEST(backlog->at("ops").dead == 0u);
}

// Each webhook's row holds the body its format made, with its content type;
// rows from before formats existed (schema 2) read as CloudEvents.
BOOST_AUTO_TEST_CASE(each_webhook_row_keeps_its_own_body_and_content_type) {
    testing::temp_dir tmp;
    auto const dir = tmp.path().string();
    auto st = open_or_die(dir);
    auto e = make_event("id-1", 1);
    store::routed_event routed{&e, {{"ops", "application/cloudevents+json", e.body},
                                    {"chat", "application/json", R"({"text":"vip is complete"})"}}};
    BOOST_TEST_REQUIRE(st->commit("p/e/s/i", "w", state_with("complete", 1), {routed}, at(1000)).has_value());
    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows->size() == 2u);
    BOOST_TEST((*rows)[0].webhook == "chat");
    BOOST_TEST((*rows)[0].body == R"({"text":"vip is complete"})");
    BOOST_TEST((*rows)[0].content_type == "application/json");
    BOOST_TEST((*rows)[1].body == e.body);
    BOOST_TEST((*rows)[1].content_type == "application/cloudevents+json");
    st.reset();

    auto const db = dir + "/importwatch.db";
    BOOST_TEST_REQUIRE(sqlite_exec(db, "DROP INDEX outbox_due; ALTER TABLE outbox DROP COLUMN content_type; "
                                           "PRAGMA user_version = 2") ==
                       SQLITE_OK);
    st = open_or_die(dir);
    rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows->size() == 2u);
    BOOST_TEST((*rows)[0].content_type == "application/cloudevents+json");
    BOOST_TEST((*rows)[1].content_type == "application/cloudevents+json");
}

BOOST_AUTO_TEST_CASE(failed_commit_leaves_nothing) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "p/e/s/i", 1, 1, {"ops"}, at(1000));

    // The second outbox insert collides with the first (same event id to the
    // same webhook): the watch row update and the first insert must roll back.
    auto e2 = make_event("id-2", 2);
    auto dup = make_event("id-2", 3);
    std::vector<store::routed_event> routed{routed_to(e2, {"ops"}), routed_to(dup, {"ops"})};
    auto r = st->commit("p/e/s/i", "p/e/s/i-name", state_with("complete", 3), routed, at(2000));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().rfind("commit: ", 0) == 0, r.error());

    auto watches = st->load_watches();
    BOOST_TEST((watches->at("p/e/s/i").status == std::optional<std::string>("in_progress")));
    BOOST_TEST(watches->at("p/e/s/i").sequence == 1u);
    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows->size() == 1u);
    BOOST_TEST((*rows)[0].event_id == "p/e/s/i-ev1");

    // The store is still usable afterwards (no transaction left open).
    commit_events(*st, "p/e/s/i", 2, 2, {"ops"}, at(3000));
    BOOST_TEST(st->list_outbox()->size() == 2u);

    // A brand-new watch whose commit fails leaves no row at all.
    auto n1 = make_event("n-1", 1);
    std::vector<store::routed_event> bad{routed_to(n1, {"ops", "ops"})};
    BOOST_TEST(!st->commit("p/e/s/new", "new", state_with("ready", 1), bad, at(4000)).has_value());
    BOOST_TEST(st->load_watches()->count("p/e/s/new") == 0u);
    BOOST_TEST(st->list_outbox()->size() == 2u);
}

// The dispatcher records the outcomes of the attempts that finished together
// in one call (one transaction): each is applied as on its own.
BOOST_AUTO_TEST_CASE(outcomes_recorded_together_each_take_effect) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "A", 1, 2, {"ops"}, at(1000));
    commit_events(*st, "B", 1, 2, {"ops"}, at(1000));
    commit_events(*st, "C", 1, 2, {"ops"}, at(1000));
    auto heads = all_heads(*st);
    BOOST_TEST_REQUIRE(heads->size() == 3u);
    std::map<std::string, store::delivery> by;
    for (auto const& h : *heads) by[h.watch_path] = h;

    std::vector<outcome> const outcomes{outcome::delivered(by.at("A").id),
                                        outcome::retry(by.at("B").id, 1, at(60'000), "HTTP 500"),
                                        outcome::dead(by.at("C").id, 4, "HTTP 410", at(5000))};
    BOOST_TEST_REQUIRE(st->record(outcomes).has_value());

    heads = all_heads(*st);
    by.clear();
    for (auto const& h : *heads) by[h.watch_path] = h;
    BOOST_TEST(by.at("A").sequence == 2u);              // delivered: the next event is the head
    BOOST_TEST(by.at("B").sequence == 1u);              // retried: still the head, rescheduled
    BOOST_TEST(by.at("B").attempts == 1);
    BOOST_TEST((by.at("B").next_attempt == at(60'000)));
    BOOST_TEST(by.at("C").sequence == 2u);              // dead letter: done, the next goes
    auto backlog = st->backlog();
    BOOST_TEST_REQUIRE(backlog.has_value());
    BOOST_TEST(backlog->at("ops").pending == 4u);      // A2, B1, B2, C2
    BOOST_TEST(backlog->at("ops").dead == 1u);
    BOOST_TEST(st->record({}).has_value());
}

BOOST_AUTO_TEST_CASE(delivery_heads_keep_order_and_skip_dead_rows) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "A", 1, 3, {"ops", "audit"}, at(1000));
    commit_events(*st, "B", 1, 2, {"ops"}, at(1000));

    auto heads = all_heads(*st);
    BOOST_TEST_REQUIRE(heads.has_value());
    std::map<std::pair<std::string, std::string>, store::delivery> by;
    for (auto const& h : *heads) by[{h.webhook, h.watch_path}] = h;
    BOOST_TEST_REQUIRE(heads->size() == 3u);
    BOOST_TEST(by.at({"ops", "A"}).sequence == 1u);
    BOOST_TEST(by.at({"audit", "A"}).sequence == 1u);
    BOOST_TEST(by.at({"ops", "B"}).sequence == 1u);

    // A rescheduled head stays the head (event 2 may not overtake it).
    auto a1 = by.at({"ops", "A"});
    BOOST_TEST_REQUIRE(st->record({outcome::retry(a1.id, 1, at(60'000), "HTTP 500")}).has_value());
    heads = all_heads(*st);
    by.clear();
    for (auto const& h : *heads) by[{h.webhook, h.watch_path}] = h;
    BOOST_TEST(by.at({"ops", "A"}).id == a1.id);
    BOOST_TEST(by.at({"ops", "A"}).attempts == 1);
    BOOST_TEST(by.at({"ops", "A"}).last_error == "HTTP 500");
    BOOST_TEST((by.at({"ops", "A"}).next_attempt == at(60'000)));

    // Dead-lettered counts as done: event 2 becomes the head.
    BOOST_TEST_REQUIRE(st->record({outcome::dead(a1.id, 2, "HTTP 410", at(70'000))}).has_value());
    heads = all_heads(*st);
    by.clear();
    for (auto const& h : *heads) by[{h.webhook, h.watch_path}] = h;
    BOOST_TEST(by.at({"ops", "A"}).sequence == 2u);
    // Delivered removes the row: event 3 next.
    BOOST_TEST_REQUIRE(st->record({outcome::delivered(by.at({"ops", "A"}).id)}).has_value());
    heads = all_heads(*st);
    by.clear();
    for (auto const& h : *heads) by[{h.webhook, h.watch_path}] = h;
    BOOST_TEST(by.at({"ops", "A"}).sequence == 3u);
    BOOST_TEST(by.at({"audit", "A"}).sequence == 1u);   // other webhook unaffected

    auto rows = st->list_outbox();
    auto dead = std::count_if(rows->begin(), rows->end(), [](auto const& d) { return d.dead; });
    BOOST_TEST(dead == 1);
    auto backlog = st->backlog();
    BOOST_TEST(backlog->at("ops").dead == 1u);
    BOOST_TEST(backlog->at("ops").pending == 3u);   // A3, B1, B2

    // An empty outbox has no heads.
    testing::temp_dir tmp2;
    auto empty = open_or_die(tmp2.path().string());
    BOOST_TEST(all_heads(*empty)->empty());
}

// The dispatcher asks for a few heads of one webhook at a time: the
// earliest due first, never a row that another row of its queue precedes,
// never another webhook's, never more than asked.
BOOST_AUTO_TEST_CASE(delivery_heads_are_the_earliest_heads_of_one_webhook) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "A", 1, 3, {"ops", "audit"}, at(1000));
    commit_events(*st, "B", 1, 2, {"ops"}, at(2000));
    commit_events(*st, "C", 1, 2, {"ops"}, at(3000));
    auto names = [](core::expected<std::vector<store::delivery>> const& heads) {
        std::vector<std::string> out;
        for (auto const& h : *heads) out.push_back(h.watch_path + std::to_string(h.sequence));
        return out;
    };

    auto heads = st->delivery_heads("ops", 2);
    BOOST_TEST_REQUIRE(heads.has_value());
    // A2 falls due before B1, but A1 precedes it.
    BOOST_TEST(names(heads) == (std::vector<std::string>{"A1", "B1"}), boost::test_tools::per_element());
    for (auto const& h : *heads) BOOST_TEST(h.webhook == "ops");

    // A rescheduled head moves behind the others and still holds A2 back.
    BOOST_TEST_REQUIRE(st->record({outcome::retry(heads->front().id, 1, at(60'000), "HTTP 500")}).has_value());
    BOOST_TEST(names(st->delivery_heads("ops", 2)) == (std::vector<std::string>{"B1", "C1"}),
               boost::test_tools::per_element());
    BOOST_TEST(names(st->delivery_heads("ops", 10)) == (std::vector<std::string>{"B1", "C1", "A1"}),
               boost::test_tools::per_element());

    // Delivered: the next of that queue becomes a head, at its own due time.
    auto b1 = st->delivery_heads("ops", 1);
    BOOST_TEST_REQUIRE(st->record({outcome::delivered(b1->front().id)}).has_value());
    BOOST_TEST(names(st->delivery_heads("ops", 10)) == (std::vector<std::string>{"B2", "C1", "A1"}),
               boost::test_tools::per_element());

    BOOST_TEST(names(st->delivery_heads("audit", 10)) == (std::vector<std::string>{"A1"}),
               boost::test_tools::per_element());
    BOOST_TEST(st->delivery_heads("nobody", 10)->empty());
    BOOST_TEST(st->delivery_heads("ops", 0)->empty());
}

BOOST_AUTO_TEST_CASE(reopen_keeps_everything) {
    testing::temp_dir tmp;
    auto dir = tmp.path().string();
    {
        auto st = open_or_die(dir);
        commit_events(*st, "A", 1, 4, {"ops"}, at(1000));
        auto heads = all_heads(*st);
        BOOST_TEST_REQUIRE(st->record({outcome::delivered(heads->front().id)}).has_value());
    }
    auto st = open_or_die(dir);
    auto watches = st->load_watches();
    BOOST_TEST(watches->at("A").sequence == 4u);
    auto heads = all_heads(*st);
    BOOST_TEST_REQUIRE(heads->size() == 1u);
    BOOST_TEST(heads->front().sequence == 2u);
    // The sequence continues from where it was.
    commit_events(*st, "A", 5, 5, {"ops"}, at(2000));
    BOOST_TEST(st->load_watches()->at("A").sequence == 5u);
    BOOST_TEST(st->list_outbox()->size() == 4u);
}

BOOST_AUTO_TEST_CASE(corrupt_database_is_an_error_and_left_alone) {
    testing::temp_dir tmp;
    std::string garbage(8192, '\0');
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) % 251);
    auto db = tmp.write("importwatch.db", garbage);
    for (auto mode : {open_mode::daemon, open_mode::tool}) {
        auto r = state_store::open(tmp.path().string(), mode);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error() == db + ": file is not a database");
        BOOST_TEST(testing::read_file(db) == garbage);
    }
    BOOST_TEST(!fs::exists(db + "-wal"));
}

BOOST_AUTO_TEST_CASE(state_dir_lock) {
    testing::temp_dir tmp;
    auto dir = tmp.path().string();
    auto first = open_or_die(dir);
    commit_events(*first, "A", 1, 1, {"ops"}, at(1000));

    auto second = state_store::open(dir, open_mode::daemon);
    BOOST_TEST_REQUIRE(!second.has_value());
    BOOST_TEST(second.error() ==
               "state dir " + dir + " is locked by another importwatch (pid " + std::to_string(::getpid()) + ")");

    // A tool opens beside the daemon and sees (and changes) the same data.
    auto tool = open_or_die(dir, open_mode::tool);
    BOOST_TEST(tool->list_outbox()->size() == 1u);
    auto id = tool->list_outbox()->front().id;
    BOOST_TEST_REQUIRE(first->record({outcome::dead(id, 3, "HTTP 410", at(2000))}).has_value());
    BOOST_TEST(tool->replay(std::nullopt, at(3000)).has_value());
    BOOST_TEST(!first->list_outbox()->front().dead);

    // Released when the store closes.
    first.reset();
    auto again = state_store::open(dir, open_mode::daemon);
    BOOST_TEST(again.has_value());
}

BOOST_AUTO_TEST_CASE(tool_mode_does_not_create_state) {
    testing::temp_dir tmp;
    auto dir = (tmp.path() / "missing").string();
    auto r = state_store::open(dir, open_mode::tool);
    BOOST_TEST(!r.has_value());
    BOOST_TEST(!fs::exists(dir));
}

BOOST_AUTO_TEST_CASE(replay_restarts_dead_letters) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "A", 1, 1, {"ops", "audit"}, at(1000));
    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows.has_value());
    for (auto const& d : *rows) BOOST_TEST_REQUIRE(st->record({outcome::dead(d.id, 7, "HTTP 410", at(5000))}).has_value());
    BOOST_TEST(all_heads(*st)->empty());

    auto n = st->replay(std::string("ops"), at(9000));
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(*n == 1u);
    auto heads = all_heads(*st);
    BOOST_TEST_REQUIRE(heads->size() == 1u);
    auto const& h = heads->front();
    BOOST_TEST(h.webhook == "ops");
    BOOST_TEST(h.attempts == 0);
    BOOST_TEST(!h.dead);
    BOOST_TEST((h.next_attempt == at(9000)));
    BOOST_TEST((h.committed == at(9000)));   // max_age restarts
    BOOST_TEST(*st->replay(std::string("nope"), at(9000)) == 0u);
    BOOST_TEST(*st->replay(std::nullopt, at(9500)) == 1u);
    BOOST_TEST(*st->replay(std::nullopt, at(9500)) == 0u);
}

BOOST_AUTO_TEST_CASE(purge_dead_by_cutoff) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    commit_events(*st, "A", 1, 3, {"ops"}, at(1000));
    auto rows = *st->list_outbox();
    BOOST_TEST_REQUIRE(st->record({outcome::dead(rows[0].id, 1, "x", at(10'000))}).has_value());
    BOOST_TEST_REQUIRE(st->record({outcome::dead(rows[1].id, 1, "x", at(20'000))}).has_value());
    auto n = st->purge_dead(at(15'000));
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(*n == 1u);
    rows = *st->list_outbox();
    BOOST_TEST_REQUIRE(rows.size() == 2u);
    BOOST_TEST(rows[0].sequence == 2u);
    BOOST_TEST(rows[0].dead);
    BOOST_TEST((rows[0].dead_since == at(20'000)));
    BOOST_TEST(!rows[1].dead);   // pending rows are never purged
    BOOST_TEST(*st->purge_dead(at(1'000'000)) == 1u);
    BOOST_TEST(st->list_outbox()->size() == 1u);
}

BOOST_AUTO_TEST_CASE(newer_schema_is_refused) {
    testing::temp_dir tmp;
    auto dir = tmp.path().string();
    open_or_die(dir).reset();
    auto db = dir + "/importwatch.db";
    BOOST_TEST_REQUIRE(sqlite_exec(db, "PRAGMA user_version = 99") == SQLITE_OK);
    auto r = state_store::open(dir, open_mode::daemon);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find(db + ": database schema version 99 is newer") == 0, r.error());
}

BOOST_AUTO_TEST_CASE(unwritable_database_makes_commit_fail) {
    testing::temp_dir tmp;
    auto dir = tmp.path().string();
    auto st = open_or_die(dir);
    commit_events(*st, "A", 1, 1, {"ops"}, at(1000));

    // Another connection holding the write lock: as root, chmod cannot make
    // the file read-only, but a writer that never lets go fails the same way.
    sqlite3* other = nullptr;
    BOOST_TEST_REQUIRE(sqlite3_open((dir + "/importwatch.db").c_str(), &other) == SQLITE_OK);
    BOOST_TEST_REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    auto e = make_event("id-x", 2);
    std::vector<store::routed_event> routed{routed_to(e, {"ops"})};
    auto r = st->commit("A", "A-name", state_with("complete", 2), routed, at(2000));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "commit: database is locked");
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);

    BOOST_TEST(st->load_watches()->at("A").sequence == 1u);
    BOOST_TEST(st->list_outbox()->size() == 1u);
    // Once the writer is gone, the same commit succeeds.
    BOOST_TEST(st->commit("A", "A-name", state_with("complete", 2), routed, at(2000)).has_value());

    if (::geteuid() != 0) {
        auto db = dir + "/importwatch.db";
        st.reset();
        ::chmod(db.c_str(), 0400);
        ::chmod(dir.c_str(), 0500);
        auto ro = state_store::open(dir, open_mode::daemon);
        if (ro) {
            auto rr = (*ro)->commit("A", "A-name", state_with("complete", 3), {}, at(3000));
            BOOST_TEST(!rr.has_value());
        }
        ::chmod(dir.c_str(), 0700);
        ::chmod(db.c_str(), 0600);
    }
}

// A flood of events for a webhook that never takes them: its pending rows
// stay within the bound, the oldest becoming dead letters ("outbox full") in
// order; its dead letters stay within theirs, the oldest deleted. Another
// webhook is not touched.
BOOST_AUTO_TEST_CASE(outbox_bounds_dead_letter_the_oldest_then_delete_the_oldest_dead) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    store::outbox_limits limits;
    limits.pending_rows = 10;
    limits.dead_rows = 5;
    BOOST_TEST_REQUIRE(st->set_limits(limits).has_value());

    std::size_t dead_lettered = 0, dropped = 0;
    for (std::uint64_t seq = 1; seq <= 30; ++seq) {
        auto e = make_event("ev" + std::to_string(seq), seq);
        std::vector<store::routed_event> routed{routed_to(e, {seq <= 3 ? "calm" : "flood", "flood"})};
        if (seq > 3) routed[0].payloads.pop_back();
        auto r = st->commit("p/e/s/w", "w", state_with("in_progress", seq), routed, at(1000 + seq));
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error()));
        for (auto const& o : r->overflows) {
            BOOST_TEST(o.webhook == "flood");
            dead_lettered += o.dead_lettered;
            dropped += o.dropped;
        }
    }
    // flood got events 1..30; calm got 1..3.
    BOOST_TEST(dead_lettered == 20u);
    BOOST_TEST(dropped == 15u);
    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows.has_value());
    std::vector<std::uint64_t> pending, dead, calm;
    for (auto const& d : *rows) {
        if (d.webhook == "calm") calm.push_back(d.sequence);
        else if (d.dead) {
            dead.push_back(d.sequence);
            BOOST_TEST(d.last_error.starts_with("outbox full"), d.last_error);
        } else pending.push_back(d.sequence);
    }
    BOOST_TEST(pending == (std::vector<std::uint64_t>{21, 22, 23, 24, 25, 26, 27, 28, 29, 30}),
               boost::test_tools::per_element());
    BOOST_TEST(dead == (std::vector<std::uint64_t>{16, 17, 18, 19, 20}), boost::test_tools::per_element());
    BOOST_TEST(calm == (std::vector<std::uint64_t>{1, 2, 3}), boost::test_tools::per_element());
    // The dispatcher sees the oldest remaining pending one as the head.
    auto heads = all_heads(*st);
    BOOST_TEST_REQUIRE(heads.has_value());
    for (auto const& h : *heads)
        if (h.webhook == "flood") BOOST_TEST(h.sequence == 21u);
    // Delivering and dead-lettering keep the counts right: after delivering
    // two, two more fit before the bound bites again.
    for (auto const& h : *heads) BOOST_TEST_REQUIRE(st->record({outcome::delivered(h.id)}).has_value());
    heads = all_heads(*st);
    for (auto const& h : *heads)
        if (h.webhook == "flood") BOOST_TEST_REQUIRE(st->record({outcome::dead(h.id, 3, "HTTP 410 Gone", at(5000))}).has_value());
    auto e = make_event("ev31", 31);
    std::vector<store::routed_event> routed{routed_to(e, {"flood"})};
    auto r = st->commit("p/e/s/w", "w", state_with("in_progress", 31), routed, at(6000));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST_REQUIRE(r->overflows.size() == 1u);
    BOOST_TEST(r->overflows[0].dead_lettered == 0u);   // 8 pending + 1: fits
    BOOST_TEST(r->overflows[0].dropped == 1u);         // 5 dead + the 410 = 6: one too many
}

// Bytes count as well as rows.
BOOST_AUTO_TEST_CASE(outbox_bounds_count_bytes) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    store::outbox_limits limits;
    limits.pending_bytes = 1000;
    BOOST_TEST_REQUIRE(st->set_limits(limits).has_value());
    std::size_t dead_lettered = 0;
    for (std::uint64_t seq = 1; seq <= 10; ++seq) {
        auto e = make_event("ev" + std::to_string(seq), seq);
        e.body = std::string(300, 'x');
        std::vector<store::routed_event> routed{routed_to(e, {"hook"})};
        auto r = st->commit("p/e/s/w", "w", state_with("in_progress", seq), routed, at(1000 + seq));
        BOOST_TEST_REQUIRE(r.has_value());
        for (auto const& o : r->overflows) dead_lettered += o.dead_lettered;
    }
    BOOST_TEST(dead_lettered == 7u);   // 3 x 300 bytes fit in 1000
    auto backlog = st->backlog();
    BOOST_TEST_REQUIRE(backlog.has_value());
    BOOST_TEST(backlog->at("hook").pending == 3u);
    BOOST_TEST(backlog->at("hook").dead == 7u);
}

// The daemon keeps the outbox's counts in memory and trusts them, unless
// another connection (`importwatch outbox` beside it) committed since: then
// the bounds act on what is in the database, not on the stale counts.
BOOST_AUTO_TEST_CASE(outbox_bounds_see_what_another_connection_changed) {
    testing::temp_dir tmp;
    auto const dir = tmp.path().string();
    auto st = open_or_die(dir);
    store::outbox_limits limits;
    limits.pending_rows = 1;
    limits.dead_rows = 2;
    BOOST_TEST_REQUIRE(st->set_limits(limits).has_value());
    auto commit = [&](std::uint64_t seq, std::int64_t when) {
        auto e = make_event("ev" + std::to_string(seq), seq);
        std::vector<store::routed_event> routed{routed_to(e, {"hook"})};
        auto r = st->commit("p/e/s/w", "w", state_with("in_progress", seq), routed, at(when));
        BOOST_TEST_REQUIRE(r.has_value());
    };
    commit(1, 1000);
    commit(2, 2000);   // 1 becomes a dead letter
    commit(3, 3000);   // 2 as well: two dead letters, at their bound
    BOOST_TEST(st->backlog()->at("hook").dead == 2u);

    auto tool = open_or_die(dir, open_mode::tool);
    auto purged = tool->purge_dead(at(10'000));
    BOOST_TEST_REQUIRE(purged.has_value());
    BOOST_TEST(*purged == 2u);

    // 3 becomes the only dead letter. Counted from the stale memory (two
    // dead already), the bound would delete it at once.
    commit(4, 4000);
    auto rows = st->list_outbox();
    BOOST_TEST_REQUIRE(rows.has_value());
    std::vector<std::uint64_t> dead, pending;
    for (auto const& d : *rows) (d.dead ? dead : pending).push_back(d.sequence);
    BOOST_TEST(dead == (std::vector<std::uint64_t>{3}), boost::test_tools::per_element());
    BOOST_TEST(pending == (std::vector<std::uint64_t>{4}), boost::test_tools::per_element());
}

// The whole database is bounded: past it a commit fails (nothing of it
// written) and says why, like a full disk.
BOOST_AUTO_TEST_CASE(the_database_size_is_bounded) {
    testing::temp_dir tmp;
    auto st = open_or_die(tmp.path().string());
    store::outbox_limits limits;
    limits.database_bytes = 256 * 1024;
    BOOST_TEST_REQUIRE(st->set_limits(limits).has_value());
    bool failed = false;
    std::uint64_t seq = 1;
    for (; seq <= 200 && !failed; ++seq) {
        auto e = make_event("ev" + std::to_string(seq), seq);
        e.body = std::string(8000, 'x');
        std::vector<store::routed_event> routed{routed_to(e, {"hook"})};
        auto r = st->commit("p/e/s/w", "w", state_with("in_progress", seq), routed, at(1000));
        if (!r) {
            failed = true;
            BOOST_TEST(r.error().find("reached its size limit of 256 KiB") != std::string::npos, r.error());
            BOOST_TEST(st->at_size_limit());
        }
    }
    BOOST_TEST(failed);
    BOOST_TEST(seq > 10u);
    auto watches = st->load_watches();
    BOOST_TEST_REQUIRE(watches.has_value());
    BOOST_TEST(watches->at("p/e/s/w").sequence == seq - 2);   // the failed commit left nothing
    BOOST_TEST(fs::file_size(tmp.path() / "importwatch.db") <= 300u * 1024);
}

BOOST_AUTO_TEST_SUITE_END()
