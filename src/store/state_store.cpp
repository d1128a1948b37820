#include "store/state_store.hpp"

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace importwatch::store {

namespace {

namespace fs = std::filesystem;

constexpr char const* database_name = "importwatch.db";
constexpr char const* lock_name = "lock";

// Schema migrations, applied in order inside one transaction; user_version is
// the number applied. Never edit a step once released: append a new one.
constexpr char const* migrations[] = {
    // 1: watches and the outbox.
    R"sql(
CREATE TABLE watches (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT,
    import_json TEXT NOT NULL DEFAULT '',
    status_since_ms INTEGER NOT NULL DEFAULT 0,
    sequence INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT,
    failure_http_status INTEGER,
    failure_message TEXT,
    stall_reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook TEXT NOT NULL,
    watch_key TEXT NOT NULL,
    watch_name TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    committed_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    dead INTEGER NOT NULL DEFAULT 0,
    dead_since_ms INTEGER,
    UNIQUE (webhook, event_id)
);
CREATE INDEX outbox_order ON outbox (webhook, watch_key, dead, sequence);
)sql",
    // 2: each row's body size, and an index that answers "how much does this
    // webhook hold" and "its oldest rows" without reading any body.
    R"sql(
ALTER TABLE outbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET size = length(CAST(body AS BLOB));
CREATE INDEX outbox_age ON outbox (webhook, dead, id, size, committed_ms);
)sql",
    // 3: bodies in other formats than the CloudEvent (webhook `format`);
    // every row before was a CloudEvent.
    R"sql(
ALTER TABLE outbox ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/cloudevents+json';
)sql",
    // 4: a webhook's pending rows in the order they fall due, so the
    // dispatcher reads only the few heads it can start, not every queue.
    R"sql(
CREATE INDEX outbox_due ON outbox (webhook, dead, next_attempt_ms);
)sql",
};
constexpr int schema_version = static_cast<int>(std::size(migrations));

// "16 MiB", "256 KiB", "100 bytes": bounds as the README states them.
std::string describe_bytes(std::size_t n) {
    if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
    if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " bytes";
}

std::int64_t to_ms(sys_ms t) { return t.time_since_epoch().count(); }
sys_ms from_ms(std::int64_t v) { return sys_ms{core::milliseconds{v}}; }

// A prepared statement, reset (not finalized) after each use.
class statement {
public:
    statement() = default;
    statement(statement const&) = delete;
    statement& operator=(statement const&) = delete;
    ~statement() { sqlite3_finalize(stmt_); }

    int prepare(sqlite3* db, char const* sql) {
        return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    }
    sqlite3_stmt* get() const { return stmt_; }

    // Resets and clears bindings so the statement is ready for the next use.
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    void bind(int i, std::string_view s) {
        sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
    void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    void bind_null(int i) { sqlite3_bind_null(stmt_, i); }

    int step() { return sqlite3_step(stmt_); }

    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::string text(int col) const { return std::string(view(col)); }
    // Valid until the statement steps or resets.
    std::string_view view(int col) const {
        auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(stmt_, col));
        return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string_view();
    }

private:
    sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when leaving a scope, whatever the path.
struct reset_guard {
    statement& s;
    ~reset_guard() { s.reset(); }
};

// A watch row as read_watch reads it, in this order.
constexpr char const* watch_columns =
    "key, status, import_json, status_since_ms, sequence, failure_reason, failure_http_status, "
    "failure_message, stall_reported";

constexpr char const* delivery_columns =
    "id, webhook, watch_key, watch_name, sequence, event_id, event_type, body, attempts, "
    "committed_ms, next_attempt_ms, last_error, dead, dead_since_ms, content_type";

delivery read_delivery(statement const& s) {
    delivery d;
    d.id = s.int64(0);
    d.webhook = s.text(1);
    d.watch_path = s.text(2);
    d.watch_name = s.text(3);
    d.sequence = static_cast<std::uint64_t>(s.int64(4));
    d.event_id = s.text(5);
    d.event_type = s.text(6);
    d.body = s.text(7);
    d.attempts = static_cast<int>(s.int64(8));
    d.committed = from_ms(s.int64(9));
    d.next_attempt = from_ms(s.int64(10));
    d.last_error = s.text(11);
    d.dead = s.int64(12) != 0;
    d.dead_since = s.is_null(13) ? sys_ms{} : from_ms(s.int64(13));
    d.content_type = s.text(14);
    return d;
}

// The heads of one webhook's queues, earliest due first, at most ?2: a head
// is the pending row of a (webhook, watch) queue that no pending row of the
// same queue precedes (smaller sequence, then id). Dead rows count as done
// and block nothing. It walks outbox_due in due order and stops at the
// limit; each row costs one bounded seek in outbox_order (`sequence <=`
// bounds it: a head's range holds only itself) to tell whether it is a head.
constexpr char const* select_heads_sql =
    "FROM outbox AS o WHERE o.webhook = ?1 AND o.dead = 0 AND NOT EXISTS ("
    "SELECT 1 FROM outbox AS i WHERE i.webhook = o.webhook AND i.watch_key = o.watch_key AND i.dead = 0 "
    "AND i.sequence <= o.sequence AND (i.sequence < o.sequence OR i.id < o.id)) "
    "ORDER BY o.next_attempt_ms, o.id LIMIT ?2";

std::string prefixed_columns(std::string const& alias) {
    std::string out;
    std::string_view cols = delivery_columns;
    while (!cols.empty()) {
        auto comma = cols.find(',');
        auto name = cols.substr(0, comma);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        if (!out.empty()) out += ", ";
        out += alias + "." + std::string(name);
        cols = comma == std::string_view::npos ? std::string_view() : cols.substr(comma + 1);
    }
    return out;
}

std::string sql(char const* rest) { return std::string("SELECT ") + delivery_columns + " FROM outbox " + rest; }

} // namespace

struct state_store::impl {
    // Declared before the statements so they are finalized before it closes.
    struct connection {
        int lock_fd = -1;
        sqlite3* db = nullptr;
        ~connection() {
            if (db) sqlite3_close(db);
            if (lock_fd >= 0) ::close(lock_fd);   // releases the flock
        }
    };

    std::string dir;
    std::string path;
    connection conn;
    sqlite3*& db = conn.db;

    statement begin_immediate, commit_tx, rollback_tx, sync_normal, sync_full;
    statement upsert_watch, insert_outbox, select_watches, select_watch, select_import;
    statement select_heads;
    statement update_delivered, update_reschedule, update_dead;
    statement select_outbox, replay_all, replay_one, purge;
    statement select_backlog;
    statement select_usage, select_oldest, dead_letter_full, delete_row, page_count, data_version;

    // Per webhook: rows and body bytes, pending and dead (outbox_limits).
    // The counts follow every change this connection makes, so they are
    // exact until another connection (`importwatch outbox replay` beside the
    // daemon) commits: PRAGMA data_version says when, and they are read again.
    struct usage {
        std::size_t pending_rows = 0, pending_bytes = 0, dead_rows = 0, dead_bytes = 0;
        std::int64_t data_version = -1;   // others_version() when read
    };
    std::map<std::string, usage, std::less<>> usage_;
    outbox_limits limits_;
    int last_rc = SQLITE_OK;   // of the last failed step
    bool at_size_limit = false;
    std::uint64_t decision_transactions = 0, decisions_committed = 0;

    std::string errmsg() const { return db ? sqlite3_errmsg(db) : "out of memory"; }

    core::expected<void> exec(char const* text) {
        char* err = nullptr;
        if (sqlite3_exec(db, text, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string message = err ? err : errmsg();
            sqlite3_free(err);
            return core::fail(message);
        }
        return {};
    }

    // Runs a statement that returns no rows (or whose rows are ignored).
    core::expected<void> run(statement& s) {
        reset_guard g{s};
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) {
            last_rc = rc;
            return core::fail(errmsg());
        }
        return {};
    }

    // Runs a statement RETURNING webhook, dead, size, calling `f` per row.
    template <class F>
    core::expected<void> run_returning(statement& s, F&& f) {
        reset_guard g{s};
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) f(s.text(0), s.int64(1) != 0, static_cast<std::size_t>(s.int64(2)));
        if (rc != SQLITE_DONE) {
            last_rc = rc;
            return core::fail(errmsg());
        }
        return {};
    }

    // Changes whenever another connection (an `importwatch outbox` command
    // beside the daemon) committed; never for this connection's own commits.
    core::expected<std::int64_t> others_version() {
        reset_guard g{data_version};
        if (int rc = data_version.step(); rc != SQLITE_ROW) {
            last_rc = rc;
            return core::fail(errmsg());
        }
        return data_version.int64(0);
    }

    core::expected<usage> read_usage(std::string_view webhook, std::int64_t version) {
        auto& s = select_usage;
        reset_guard g{s};
        s.bind(1, webhook);
        usage u;
        u.data_version = version;
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            auto const rows = static_cast<std::size_t>(s.int64(1));
            auto const bytes = static_cast<std::size_t>(s.int64(2));
            if (s.int64(0) != 0) u.dead_rows = rows, u.dead_bytes = bytes;
            else u.pending_rows = rows, u.pending_bytes = bytes;
        }
        if (rc != SQLITE_DONE) {
            last_rc = rc;
            return core::fail(errmsg());
        }
        return u;
    }

    // The usage of `webhook` as the database has it: the cached counts, read
    // again when missing or when another connection committed since.
    core::expected<usage*> usage_of(std::string const& webhook) {
        auto version = others_version();
        if (!version) return core::fail(version.error());
        auto it = usage_.find(webhook);
        if (it != usage_.end() && it->second.data_version == *version) return &it->second;
        auto u = read_usage(webhook, *version);
        if (!u) return core::fail(u.error());
        return &(usage_[webhook] = *u);
    }

    // The oldest rows of `webhook` (pending or dead) to drop for `u` to fit
    // in `max_rows`/`max_bytes`; their ids and sizes.
    core::expected<std::vector<std::pair<std::int64_t, std::size_t>>> oldest_over(
        std::string const& webhook, bool dead, std::size_t rows, std::size_t bytes, std::size_t max_rows,
        std::size_t max_bytes) {
        std::vector<std::pair<std::int64_t, std::size_t>> out;
        auto& s = select_oldest;
        reset_guard g{s};
        s.bind(1, webhook);
        s.bind(2, std::int64_t{dead ? 1 : 0});
        int rc = SQLITE_DONE;
        while ((rows > max_rows || bytes > max_bytes) && (rc = s.step()) == SQLITE_ROW) {
            auto const size = static_cast<std::size_t>(s.int64(1));
            out.emplace_back(s.int64(0), size);
            rows -= 1;
            bytes -= std::min(bytes, size);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
            last_rc = rc;
            return core::fail(errmsg());
        }
        return out;
    }

    // Makes room in `webhook`'s outbox for `rows` more pending rows of
    // `bytes` within limits_: oldest pending become dead letters, then oldest
    // dead letters go. Before the inserts, so that the pages freed are reused
    // (a database at its size bound still takes the commit). Inside the
    // commit's transaction.
    core::expected<outbox_overflow> make_room(std::string const& webhook, std::size_t rows, std::size_t bytes,
                                              sys_ms now) {
        outbox_overflow report;
        report.webhook = webhook;
        auto exact = usage_of(webhook);
        if (!exact) return core::fail(exact.error());
        auto* u = *exact;
        auto const& l = limits_;
        if (u->pending_rows + rows > l.pending_rows || u->pending_bytes + bytes > l.pending_bytes) {
            auto victims = oldest_over(webhook, false, u->pending_rows + rows, u->pending_bytes + bytes,
                                       l.pending_rows, l.pending_bytes);
            if (!victims) return core::fail(victims.error());
            auto const reason = "outbox full: more than " + std::to_string(l.pending_rows) +
                                " pending deliveries or " + describe_bytes(l.pending_bytes) +
                                " for this webhook; the oldest became dead letters";
            for (auto const& [id, size] : *victims) {
                auto& s = dead_letter_full;
                s.bind(1, id);
                s.bind(2, to_ms(now));
                s.bind(3, reason);
                if (auto r = run(s); !r) return core::fail(r.error());
                u->pending_rows -= 1;
                u->pending_bytes -= std::min(u->pending_bytes, size);
                u->dead_rows += 1;
                u->dead_bytes += size;
            }
            report.dead_lettered = victims->size();
        }
        if (u->dead_rows > l.dead_rows || u->dead_bytes > l.dead_bytes) {
            auto victims = oldest_over(webhook, true, u->dead_rows, u->dead_bytes, l.dead_rows, l.dead_bytes);
            if (!victims) return core::fail(victims.error());
            for (auto const& [id, size] : *victims) {
                delete_row.bind(1, id);
                if (auto r = run(delete_row); !r) return core::fail(r.error());
                u->dead_rows -= 1;
                u->dead_bytes -= std::min(u->dead_bytes, size);
            }
            report.dropped = victims->size();
        }
        return report;
    }

    // After a failed write: was it the database size bound?
    void note_failure() {
        at_size_limit = false;
        if (last_rc != SQLITE_FULL) return;
        reset_guard g{page_count};
        if (page_count.step() != SQLITE_ROW) return;
        auto const pages = page_count.int64(0);
        auto const max_pages = page_count.int64(1);
        at_size_limit = max_pages > 0 && pages + 8 >= max_pages;
    }

    core::expected<void> apply_size_limit() {
        statement size;
        if (size.prepare(db, "PRAGMA page_size") != SQLITE_OK || size.step() != SQLITE_ROW)
            return core::fail(errmsg());
        auto const page = std::max<std::int64_t>(512, size.int64(0));
        auto const pages = std::max<std::int64_t>(1, static_cast<std::int64_t>(limits_.database_bytes) / page);
        return exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str());
    }

    void rollback() {
        if (!sqlite3_get_autocommit(db)) {
            reset_guard g{rollback_tx};
            rollback_tx.step();
        }
    }

    // Wraps a fallible body in BEGIN IMMEDIATE … COMMIT, rolling back on
    // error. The one place a transaction is opened, and it is closed before
    // this returns (see state_store): one never nests in another.
    template <class F>
    auto in_transaction(std::string_view what, F&& body) -> decltype(body()) {
        auto prefix = std::string(what) + ": ";
        if (!sqlite3_get_autocommit(db)) return core::fail(prefix + "a transaction is already open");
        if (auto r = run(begin_immediate); !r) return core::fail(prefix + r.error());
        auto result = body();
        if (!result) {
            rollback();
            usage_.clear();   // the cached counts may include what was rolled back
            return core::fail(prefix + result.error());
        }
        if (auto r = run(commit_tx); !r) {
            rollback();
            usage_.clear();
            return core::fail(prefix + r.error());
        }
        return result;
    }

    // One decision's rows, inside the commit's transaction.
    core::expected<commit_report> write_decision(commit_request const& request, sys_ms now);

    core::expected<void> migrate();
    core::expected<void> prepare_all();
};

core::expected<void> state_store::impl::migrate() {
    statement version;
    if (version.prepare(db, "PRAGMA user_version") != SQLITE_OK) return core::fail(errmsg());
    int rc = version.step();
    if (rc != SQLITE_ROW) return core::fail(errmsg());
    auto const current = static_cast<int>(version.int64(0));
    version.reset();
    if (current > schema_version)
        return core::fail("database schema version " + std::to_string(current) +
                          " is newer than this importwatch supports (" + std::to_string(schema_version) +
                          "); upgrade importwatch");
    if (current == schema_version) return {};

    if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
    for (int step = current; step < schema_version; ++step) {
        if (auto r = exec(migrations[step]); !r) {
            exec("ROLLBACK");
            return core::fail("schema migration " + std::to_string(step + 1) + ": " + r.error());
        }
    }
    auto set_version = "PRAGMA user_version = " + std::to_string(schema_version);
    if (auto r = exec(set_version.c_str()); !r) {
        exec("ROLLBACK");
        return r;
    }
    if (auto r = exec("COMMIT"); !r) {
        exec("ROLLBACK");
        return r;
    }
    return {};
}

core::expected<void> state_store::impl::prepare_all() {
    struct entry {
        statement& s;
        std::string text;
    };
    entry const entries[] = {
        {begin_immediate, "BEGIN IMMEDIATE"},
        {commit_tx, "COMMIT"},
        {rollback_tx, "ROLLBACK"},
        {sync_normal, "PRAGMA synchronous=NORMAL"},
        {sync_full, "PRAGMA synchronous=FULL"},
        {upsert_watch,
         // ?4 NULL: the stored Import stays (none for a new row).
         "INSERT INTO watches (key, name, status, import_json, status_since_ms, sequence, failure_reason, "
         "failure_http_status, failure_message, stall_reported) "
         "VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5, ?6, ?7, ?8, ?9, ?10) "
         "ON CONFLICT (key) DO UPDATE SET name = excluded.name, status = excluded.status, "
         "import_json = coalesce(?4, import_json), status_since_ms = excluded.status_since_ms, "
         "sequence = excluded.sequence, failure_reason = excluded.failure_reason, "
         "failure_http_status = excluded.failure_http_status, failure_message = excluded.failure_message, "
         "stall_reported = excluded.stall_reported"},
        {insert_outbox,
         "INSERT INTO outbox (webhook, watch_key, watch_name, sequence, event_id, event_type, body, attempts, "
         "committed_ms, next_attempt_ms, last_error, dead, size, content_type) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8, '', 0, ?9, ?10)"},
        {select_watches, std::string("SELECT ") + watch_columns + " FROM watches"},
        {select_watch, std::string("SELECT ") + watch_columns + " FROM watches WHERE key = ?1"},
        {select_import, "SELECT import_json FROM watches WHERE key = ?1"},
        {select_heads, std::string("SELECT ") + prefixed_columns("o") + " " + select_heads_sql},
        // These three return what the usage counts need. A row dead-lettered
        // by outbox_limits while its attempt was in flight stays dead.
        {update_delivered, "DELETE FROM outbox WHERE id = ?1 RETURNING webhook, dead, size"},
        {update_reschedule,
         "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1 AND dead = 0"},
        {update_dead, "UPDATE outbox SET attempts = ?2, last_error = ?3, dead = 1, dead_since_ms = ?4 "
                      "WHERE id = ?1 AND dead = 0 RETURNING webhook, dead, size"},
        {select_outbox, sql("ORDER BY webhook, watch_key, sequence, id")},
        // Replay restarts the delivery: attempts 0 and max_age counted from now.
        {replay_all, "UPDATE outbox SET dead = 0, dead_since_ms = NULL, attempts = 0, committed_ms = ?1, "
                     "next_attempt_ms = ?1 WHERE dead = 1"},
        {replay_one, "UPDATE outbox SET dead = 0, dead_since_ms = NULL, attempts = 0, committed_ms = ?1, "
                     "next_attempt_ms = ?1 WHERE dead = 1 AND webhook = ?2"},
        {purge, "DELETE FROM outbox WHERE dead = 1 AND dead_since_ms < ?1"},
        {select_backlog, "SELECT webhook, SUM(dead = 0), MIN(CASE WHEN dead = 0 THEN committed_ms END), "
                         "SUM(dead = 1) FROM outbox INDEXED BY outbox_age GROUP BY webhook"},
        {data_version, "PRAGMA data_version"},
        {select_usage, "SELECT dead, COUNT(*), TOTAL(size) FROM outbox INDEXED BY outbox_age WHERE webhook = ?1 "
                       "GROUP BY dead"},
        {select_oldest, "SELECT id, size FROM outbox INDEXED BY outbox_age WHERE webhook = ?1 AND dead = ?2 "
                        "ORDER BY id"},
        {dead_letter_full, "UPDATE outbox SET dead = 1, dead_since_ms = ?2, last_error = ?3 WHERE id = ?1 AND dead = 0"},
        {delete_row, "DELETE FROM outbox WHERE id = ?1"},
        {page_count, "SELECT page_count, max_page_count FROM pragma_page_count(), pragma_max_page_count()"},
    };
    for (auto const& e : entries)
        if (e.s.prepare(db, e.text.c_str()) != SQLITE_OK) return core::fail(errmsg());
    return {};
}

namespace {

// Takes the state dir lock and writes our pid into it. Kept for the store's lifetime.
core::expected<int> take_lock(std::string const& dir) {
    auto const lock_path = (fs::path(dir) / lock_name).string();
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return core::fail(lock_path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int const err = errno;
        if (err == EWOULDBLOCK) {
            char buf[32] = {};
            auto n = ::pread(fd, buf, sizeof buf - 1, 0);
            std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("unknown");
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
            ::close(fd);
            return core::fail("state dir " + dir + " is locked by another importwatch (pid " + pid + ")");
        }
        ::close(fd);
        return core::fail(lock_path + ": " + std::strerror(err));
    }
    auto const pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        int const err = errno;
        ::close(fd);
        return core::fail(lock_path + ": " + std::strerror(err));
    }
    return fd;
}

} // namespace

core::expected<std::unique_ptr<state_store>> state_store::open(std::string const& dir, open_mode mode) {
    auto p = std::make_unique<impl>();
    p->dir = dir;
    p->path = (fs::path(dir) / database_name).string();

    if (mode == open_mode::daemon) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            // The dir itself is made 0700 (state may hold Import data); missing
            // parents get the usual mode. "state/" names the same dir as "state".
            auto d = fs::path(dir);
            if (!d.has_filename()) d = d.parent_path();
            if (d.has_parent_path()) fs::create_directories(d.parent_path(), ec);
            if (::mkdir(d.c_str(), 0700) != 0) {
                if (errno != EEXIST) return core::fail("state dir " + dir + ": cannot create: " + std::strerror(errno));
            } else {
                ::chmod(d.c_str(), 0700);   // independent of the umask
            }
        }
        auto fd = take_lock(dir);
        if (!fd) return core::fail(fd.error());
        p->conn.lock_fd = *fd;
    } else {
        std::error_code ec;
        if (!fs::exists(p->path, ec)) return core::fail(p->path + ": no such file");
    }

    int const flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
                      (mode == open_mode::daemon ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(p->path.c_str(), &p->db, flags, nullptr) != SQLITE_OK)
        return core::fail(p->path + ": " + p->errmsg());
    sqlite3_extended_result_codes(p->db, 0);
    // The daemon runs its whole event loop on this thread: waiting seconds for
    // a lock held by `importwatch outbox` would stall polls, deliveries and
    // health checks. A failed commit is retried by the poller anyway. The
    // short-lived outbox tools can afford to wait for the daemon.
    sqlite3_busy_timeout(p->db, mode == open_mode::daemon ? 250 : 5000);

    // Read the schema before anything writes: a file that is not a database
    // (or is unreadable) fails here and is left exactly as it is.
    if (auto r = p->exec("SELECT count(*) FROM sqlite_master"); !r) return core::fail(p->path + ": " + r.error());
    {
        statement check;
        if (check.prepare(p->db, "PRAGMA quick_check") != SQLITE_OK) return core::fail(p->path + ": " + p->errmsg());
        int rc = check.step();
        if (rc != SQLITE_ROW) return core::fail(p->path + ": " + p->errmsg());
        auto verdict = check.text(0);
        if (verdict != "ok") return core::fail(p->path + ": database is corrupt: " + verdict);
    }
    if (auto r = p->exec("PRAGMA journal_mode=WAL"); !r) return core::fail(p->path + ": " + r.error());
    // FULL: a committed outbox row survives power loss, not just a crash.
    if (auto r = p->exec("PRAGMA synchronous=FULL"); !r) return core::fail(p->path + ": " + r.error());
    // The WAL shrinks back to this after a checkpoint (a burst of large
    // commits would otherwise leave it at its largest size for good).
    if (auto r = p->exec("PRAGMA journal_size_limit=16777216"); !r) return core::fail(p->path + ": " + r.error());
    if (auto r = p->migrate(); !r) return core::fail(p->path + ": " + r.error());
    if (auto r = p->prepare_all(); !r) return core::fail(p->path + ": " + r.error());
    if (auto r = p->apply_size_limit(); !r) return core::fail(p->path + ": " + r.error());

    return std::unique_ptr<state_store>(new state_store(std::move(p)));
}

state_store::state_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
state_store::~state_store() = default;

std::string const& state_store::path() const { return impl_->path; }

namespace {

/// A stored Import ("" = none) as events may carry it: events splice the
/// stored bytes as they are, so a damaged one is forgotten rather than
/// passed on. Its files when it is kept.
bool usable_import(std::string_view import, std::vector<core::import_file>* files = nullptr) {
    if (import.empty()) return false;
    boost::system::error_code ec;
    auto json = boost::json::parse(import, ec);
    if (ec) return false;
    if (files) *files = core::files_of(json);
    return true;
}

/// A row of select_watches / select_watch (watch_columns). The Import's text
/// stays in the store (load_import): the state keeps its files and that there
/// is one.
core::watch_state read_watch(statement& s) {
    core::watch_state w;
    if (!s.is_null(1)) w.status = s.text(1);
    w.has_import = usable_import(s.view(2), &w.files);
    w.status_since = from_ms(s.int64(3));
    w.sequence = static_cast<std::uint64_t>(s.int64(4));
    if (!s.is_null(5)) {
        core::watch_failure f;
        f.reason = s.text(5);
        if (!s.is_null(6)) f.http_status = static_cast<int>(s.int64(6));
        f.message = s.text(7);
        w.failure = std::move(f);
    }
    w.stall_reported = s.int64(8) != 0;
    return w;
}

} // namespace

core::expected<std::map<std::string, core::watch_state>> state_store::load_watches() {
    auto& s = impl_->select_watches;
    reset_guard g{s};
    std::map<std::string, core::watch_state> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.emplace(s.text(0), read_watch(s));
    if (rc != SQLITE_DONE) return core::fail("load watches: " + impl_->errmsg());
    return out;
}

core::expected<std::map<std::string, core::watch_state>> state_store::load_watches(
    std::vector<std::string> const& keys) {
    std::map<std::string, core::watch_state> out;
    for (auto const& key : keys) {
        auto& s = impl_->select_watch;
        reset_guard g{s};
        s.bind(1, key);
        int const rc = s.step();
        if (rc == SQLITE_ROW) out.emplace(key, read_watch(s));
        else if (rc != SQLITE_DONE) return core::fail("load watches: " + impl_->errmsg());
    }
    return out;
}

core::expected<std::string> state_store::load_import(std::string const& watch_key) {
    auto& s = impl_->select_import;
    reset_guard g{s};
    s.bind(1, watch_key);
    int const rc = s.step();
    if (rc == SQLITE_DONE) return std::string();
    if (rc != SQLITE_ROW) return core::fail("load import: " + impl_->errmsg());
    auto const import = s.view(0);
    return usable_import(import) ? std::string(import) : std::string();
}

core::expected<commit_report> state_store::impl::write_decision(commit_request const& request, sys_ms now) {
    auto& p = *this;
    auto const& state = *request.state;
    {
        auto& s = p.upsert_watch;
        s.bind(1, request.watch_key);
        s.bind(2, request.watch_name);
        if (state.status) s.bind(3, *state.status);
        else s.bind_null(3);
        if (request.import && *request.import) s.bind(4, **request.import);
        else s.bind_null(4);
        s.bind(5, to_ms(state.status_since));
        s.bind(6, static_cast<std::int64_t>(state.sequence));
        if (state.failure) {
            s.bind(7, state.failure->reason);
            if (state.failure->http_status) s.bind(8, std::int64_t{*state.failure->http_status});
            else s.bind_null(8);
            s.bind(9, state.failure->message);
        } else {
            s.bind_null(7);
            s.bind_null(8);
            s.bind_null(9);
        }
        s.bind(10, std::int64_t{state.stall_reported ? 1 : 0});
        if (auto r = p.run(s); !r) return core::fail(r.error());
    }
    static std::vector<routed_event> const none;
    auto const& events = request.events ? *request.events : none;
    // Room first, for what each webhook is about to get.
    struct incoming {
        std::string webhook;
        std::size_t rows = 0, bytes = 0;
    };
    std::vector<incoming> touched;
    for (auto const& routed : events)
        for (auto const& payload : routed.payloads) {
            auto it = std::find_if(touched.begin(), touched.end(),
                                   [&](auto const& t) { return t.webhook == payload.webhook; });
            if (it == touched.end()) it = touched.insert(touched.end(), incoming{payload.webhook});
            it->rows += 1;
            it->bytes += payload.body.size();
        }
    commit_report report;
    for (auto const& t : touched) {
        auto overflow = p.make_room(t.webhook, t.rows, t.bytes, now);
        if (!overflow) return core::fail(overflow.error());
        if (overflow->dead_lettered > 0 || overflow->dropped > 0) report.overflows.push_back(std::move(*overflow));
    }
    for (auto const& routed : events) {
        auto const& e = *routed.event;
        for (auto const& payload : routed.payloads) {
            auto& s = p.insert_outbox;
            s.bind(1, payload.webhook);
            s.bind(2, request.watch_key);
            s.bind(3, request.watch_name);
            s.bind(4, static_cast<std::int64_t>(e.sequence));
            s.bind(5, e.id);
            s.bind(6, e.type);
            s.bind(7, payload.body);
            s.bind(8, to_ms(now));
            s.bind(9, static_cast<std::int64_t>(payload.body.size()));
            s.bind(10, payload.content_type);
            if (auto r = p.run(s); !r) return core::fail(r.error());
            auto& u = p.usage_[payload.webhook];
            u.pending_rows += 1;
            u.pending_bytes += payload.body.size();
        }
    }
    return report;
}

core::expected<std::vector<commit_report>> state_store::commit(std::vector<commit_request const*> const& batch,
                                                               sys_ms now) {
    auto& p = *impl_;
    if (batch.empty()) return std::vector<commit_report>{};
    auto result = p.in_transaction("commit", [&]() -> core::expected<std::vector<commit_report>> {
        std::vector<commit_report> reports;
        reports.reserve(batch.size());
        for (auto const* request : batch) {
            auto report = p.write_decision(*request, now);
            if (!report) return core::fail(report.error());
            reports.push_back(std::move(*report));
        }
        return reports;
    });
    if (!result) {
        p.note_failure();
        if (p.at_size_limit)
            return core::fail(result.error() + " (the state database reached its size limit of " +
                              describe_bytes(p.limits_.database_bytes) + ")");
        return result;
    }
    p.decision_transactions += 1;
    p.decisions_committed += batch.size();
    return result;
}

core::expected<commit_report> state_store::commit(std::string const& watch_key, std::string const& watch_name,
                                                  core::watch_state const& state,
                                                  std::vector<routed_event> const& events, sys_ms now,
                                                  std::optional<std::string> const& import) {
    commit_request const request{watch_key, watch_name, &state, &events, &import};
    auto reports = commit(std::vector<commit_request const*>{&request}, now);
    if (!reports) return core::fail(reports.error());
    return std::move(reports->front());
}

std::uint64_t state_store::decision_transactions() const { return impl_->decision_transactions; }
std::uint64_t state_store::decisions_committed() const { return impl_->decisions_committed; }

core::expected<void> state_store::set_limits(outbox_limits const& limits) {
    impl_->limits_ = limits;
    impl_->usage_.clear();
    return impl_->apply_size_limit();
}

outbox_limits const& state_store::limits() const { return impl_->limits_; }
bool state_store::at_size_limit() const { return impl_->at_size_limit; }

core::expected<std::vector<delivery>> state_store::delivery_heads(std::string const& webhook, std::size_t limit) {
    auto& s = impl_->select_heads;
    reset_guard g{s};
    s.bind(1, webhook);
    s.bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max())));
    std::vector<delivery> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_delivery(s));
    if (rc != SQLITE_DONE) return core::fail("delivery heads: " + impl_->errmsg());
    return out;
}

core::expected<void> state_store::record(std::vector<outcome> const& outcomes) {
    auto& p = *impl_;
    if (outcomes.empty()) return {};
    // The usage counts move with the rows; applied once the transaction
    // committed (a rollback clears them instead).
    struct moved {
        std::string webhook;
        bool was_dead = false, to_dead = false, removed = false;
        std::size_t size = 0;
    };
    std::vector<moved> moves;
    if (auto r = p.run(p.sync_normal); !r) return core::fail("record delivery outcomes: " + r.error());
    auto result = p.in_transaction("record delivery outcomes", [&]() -> core::expected<void> {
        for (auto const& o : outcomes) {
            core::expected<void> r;
            switch (o.what) {
            case outcome::kind::delivered: {
                auto& s = p.update_delivered;
                s.bind(1, o.id);
                r = p.run_returning(s, [&](std::string const& webhook, bool dead, std::size_t size) {
                    moves.push_back({webhook, dead, dead, true, size});
                });
                break;
            }
            case outcome::kind::retry: {
                auto& s = p.update_reschedule;
                s.bind(1, o.id);
                s.bind(2, std::int64_t{o.attempts});
                s.bind(3, to_ms(o.next_attempt));
                s.bind(4, o.error);
                r = p.run(s);
                break;
            }
            case outcome::kind::dead: {
                auto& s = p.update_dead;
                s.bind(1, o.id);
                s.bind(2, std::int64_t{o.attempts});
                s.bind(3, o.error);
                s.bind(4, to_ms(o.at));
                r = p.run_returning(s, [&](std::string const& webhook, bool, std::size_t size) {
                    moves.push_back({webhook, false, true, false, size});
                });
                break;
            }
            }
            if (!r) return r;
        }
        return {};
    });
    // Back to waiting for the disk on every commit of an event.
    auto restored = p.run(p.sync_full);
    if (!result) return result;
    if (!restored) return core::fail("record delivery outcomes: " + restored.error());
    for (auto const& m : moves) {
        auto it = p.usage_.find(m.webhook);
        if (it == p.usage_.end()) continue;
        auto& u = it->second;
        auto& rows = m.was_dead ? u.dead_rows : u.pending_rows;
        auto& bytes = m.was_dead ? u.dead_bytes : u.pending_bytes;
        rows -= std::min<std::size_t>(rows, 1);
        bytes -= std::min(bytes, m.size);
        if (!m.removed) {
            u.dead_rows += 1;
            u.dead_bytes += m.size;
        }
    }
    return {};
}

state_store::outcome state_store::outcome::delivered(std::int64_t id) {
    outcome o;
    o.id = id;
    o.what = kind::delivered;
    return o;
}

state_store::outcome state_store::outcome::retry(std::int64_t id, int attempts, sys_ms next_attempt,
                                                 std::string error) {
    outcome o;
    o.id = id;
    o.what = kind::retry;
    o.attempts = attempts;
    o.next_attempt = next_attempt;
    o.error = std::move(error);
    return o;
}

state_store::outcome state_store::outcome::dead(std::int64_t id, int attempts, std::string error,
                                                sys_ms dead_since) {
    outcome o;
    o.id = id;
    o.what = kind::dead;
    o.attempts = attempts;
    o.error = std::move(error);
    o.at = dead_since;
    return o;
}

core::expected<std::vector<delivery>> state_store::list_outbox() {
    auto& s = impl_->select_outbox;
    reset_guard g{s};
    std::vector<delivery> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_delivery(s));
    if (rc != SQLITE_DONE) return core::fail("list outbox: " + impl_->errmsg());
    return out;
}

core::expected<std::size_t> state_store::replay(std::optional<std::string> const& webhook, sys_ms now) {
    auto& s = webhook ? impl_->replay_one : impl_->replay_all;
    s.bind(1, to_ms(now));
    if (webhook) s.bind(2, *webhook);
    impl_->usage_.clear();
    if (auto r = impl_->run(s); !r) return core::fail("replay: " + r.error());
    return static_cast<std::size_t>(sqlite3_changes(impl_->db));
}

core::expected<std::size_t> state_store::purge_dead(sys_ms cutoff) {
    auto& s = impl_->purge;
    s.bind(1, to_ms(cutoff));
    impl_->usage_.clear();
    if (auto r = impl_->run(s); !r) return core::fail("purge dead letters: " + r.error());
    return static_cast<std::size_t>(sqlite3_changes(impl_->db));
}

core::expected<std::map<std::string, state_store::webhook_backlog>> state_store::backlog() {
    auto& s = impl_->select_backlog;
    reset_guard g{s};
    std::map<std::string, webhook_backlog> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        webhook_backlog b;
        b.pending = static_cast<std::size_t>(s.int64(1));
        if (!s.is_null(2)) b.oldest = from_ms(s.int64(2));
        b.dead = static_cast<std::size_t>(s.int64(3));
        out.emplace(s.text(0), b);
    }
    if (rc != SQLITE_DONE) return core::fail("backlog: " + impl_->errmsg());
    return out;
}

} // namespace importwatch::store
