#include "daemon/group_commit.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/clock.hpp"

namespace importwatch::daemon {

struct group_commit::impl : std::enable_shared_from_this<group_commit::impl> {
    /// One waiting commit, in its caller's coroutine frame.
    struct member {
        store::commit_request const* request;
        asio::steady_timer wake;   // never expires: cancel() wakes it
        std::optional<core::expected<store::commit_report>> result;
    };

    impl(asio::any_io_executor ex, store::state_store& s) : ex_(std::move(ex)), store_(&s) {}

    asio::any_io_executor ex_;
    store::state_store* store_;   // null once the owner is gone
    std::vector<member*> members_;
    bool flush_posted_ = false;

    void join(member& m) {
        members_.push_back(&m);
        if (flush_posted_) return;
        flush_posted_ = true;
        // Behind every handler ready now: the other replies of this turn join first.
        asio::post(ex_, [weak = weak_from_this()] {
            if (auto self = weak.lock()) {
                self->flush_posted_ = false;
                self->flush();
            }
        });
    }

    void leave(member& m) { std::erase(members_, &m); }

    void flush() {
        if (members_.empty()) return;
        auto group = std::move(members_);
        members_.clear();
        core::expected<std::vector<store::commit_report>> written =
            core::fail("commit: the state store is closed");
        if (store_) {
            std::vector<store::commit_request const*> batch;
            batch.reserve(group.size());
            for (auto const* m : group) batch.push_back(m->request);
            written = store_->commit(batch, wall_now());
        }
        for (std::size_t i = 0; i < group.size(); ++i) {
            auto& m = *group[i];
            if (written) m.result.emplace(std::move((*written)[i]));
            else m.result.emplace(core::fail(written.error()));
            m.wake.cancel();
        }
    }
};

group_commit::group_commit(asio::any_io_executor ex, store::state_store& store)
    : impl_(std::make_shared<impl>(std::move(ex), store)) {}

group_commit::~group_commit() {
    impl_->store_ = nullptr;   // members still waiting get an error, not a dangling store
}

asio::awaitable<core::expected<store::commit_report>> group_commit::commit(store::commit_request const& request) {
    auto self = impl_;
    impl::member m{&request, asio::steady_timer(self->ex_, asio::steady_timer::time_point::max()), std::nullopt};
    struct leave_on_exit {
        impl& group;
        impl::member& m;
        ~leave_on_exit() { group.leave(m); }
    } guard{*self, m};
    self->join(m);
    while (!m.result) co_await m.wake.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return std::move(*m.result);
}

void group_commit::flush() { impl_->flush(); }

std::size_t group_commit::pending() const { return impl_->members_.size(); }

} // namespace importwatch::daemon
