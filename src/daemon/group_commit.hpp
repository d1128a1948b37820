#pragma once
// Group commit: the decisions of polls that complete together share one
// transaction, so one fsync (synchronous=FULL) makes all of them durable.
//
// A poll's commit joins the group being gathered and waits. The group is
// written by a flush posted to the executor when its first member joined:
// it runs after the handlers that were ready then (the other replies read in
// the same turn of the loop), writes every member in one transaction
// (state_store::commit of a batch) and then wakes each member with its own
// report, or all of them with the one error (nothing of any was written).
//
// Nothing is written to SQLite until the flush: a group lives in memory, and
// the store opens and closes the transaction within that one call. So the
// dispatcher's outcomes, replay, purge and reads on the same connection can
// never run inside a group or see part of one. Whoever must see everything
// decided so far (a reload reading stored states, shutdown) calls flush().
#include <cstdint>
#include <memory>

#include "core/expected.hpp"
#include "net/asio.hpp"
#include "store/state_store.hpp"

namespace importwatch::daemon {

class group_commit {
public:
    group_commit(asio::any_io_executor ex, store::state_store& store);
    ~group_commit();
    group_commit(group_commit const&) = delete;
    group_commit& operator=(group_commit const&) = delete;

    /// Joins the group being gathered and completes once it has been written
    /// (this request's report) or has failed (the group's error: nothing of
    /// the group was written). `request` and what it views must live until
    /// then. If the caller's coroutine is destroyed before the flush, its
    /// request leaves the group unwritten.
    asio::awaitable<core::expected<store::commit_report>> commit(store::commit_request const& request);

    /// Writes the group gathered so far now (its members wake afterwards,
    /// on the executor). Nothing gathered: nothing happens.
    void flush();

    /// Requests gathered and not yet written.
    std::size_t pending() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
