"""The requests reference client for bench/compare (Debian's python3-requests).

N threads, each with its own Session (one keep-alive connection each), GET
the URL, parse the Import JSON and check its required fields. Run with
/usr/bin/python3. Runs until SIGTERM/SIGINT, lets the requests in flight
finish, then prints "polls=P connections=C" on stdout.
"""
import argparse
import signal
import threading

import requests

REQUIRED = ("id", "segmentKey", "creationTime", "mode", "status", "_links")


def main(args):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    polls = [0] * args.connections
    sessions = []
    failures = []

    def worker(i):
        session = requests.Session()
        # Only our four headers (requests adds Accept-Encoding and Connection by default).
        session.headers.clear()
        session.headers.update({"Authorization": args.token, "LD-API-Version": args.api_version,
                                "Accept": "application/json", "User-Agent": args.user_agent})
        sessions.append(session)
        while not stop.is_set():
            response = session.get(args.url, verify=args.ca)  # per request: a CA bundle variable would override session.verify
            body = response.json()
            if response.status_code != 200 or any(k not in body for k in REQUIRED):
                failures.append(response.status_code)
                stop.set()
                return
            polls[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.2)  # the main thread must stay free to run the signal handler
    if failures:
        raise SystemExit(f"requests_client: bad response {failures[0]}")
    created = sum(pool.num_connections
                  for s in sessions for pool in s.get_adapter(args.url).poolmanager.pools._container.values())
    print(f"polls={sum(polls)} connections={created}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--url", "--ca", "--token", "--api-version", "--user-agent"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--connections", type=int, default=2)
    main(parser.parse_args())
