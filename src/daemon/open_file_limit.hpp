#pragma once
// The daemon holds sockets for the admin server, the LaunchDarkly pool and
// webhooks: the soft RLIMIT_NOFILE (often 1024) is raised to the hard limit
// at start-up so that a flood of admin connections cannot starve the others.
namespace importwatch::daemon {

/// Raises the soft limit on open files to the hard limit; logs (debug) what
/// it did, and a warning when it could not.
void raise_open_file_limit();

} // namespace importwatch::daemon
