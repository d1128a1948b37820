"""The aiohttp reference client for bench/compare (Debian's python3-aiohttp).

N tasks share one ClientSession whose connector keeps at most N connections;
each GETs the URL, parses the Import JSON and checks its required fields.
Run with /usr/bin/python3. Runs until SIGTERM/SIGINT, lets the requests in
flight finish, then prints "polls=P connections=C" on stdout.
"""
import argparse
import asyncio
import signal
import ssl

import aiohttp

REQUIRED = ("id", "segmentKey", "creationTime", "mode", "status", "_links")


class CountingConnector(aiohttp.TCPConnector):
    """Counts the connections it opens (a TraceConfig would cost every request)."""
    created = 0

    async def _create_connection(self, *args, **kwargs):
        CountingConnector.created += 1
        return await super()._create_connection(*args, **kwargs)


async def main(args):
    context = ssl.create_default_context(cafile=args.ca)  # verifies the chain and the host/IP
    headers = {"Authorization": args.token, "LD-API-Version": args.api_version,
               "Accept": "application/json", "User-Agent": args.user_agent}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    connector = CountingConnector(limit=args.connections, ssl=context)
    polls = 0

    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     skip_auto_headers=("Accept-Encoding",)) as session:
        async def worker():
            nonlocal polls
            while not stop.is_set():
                async with session.get(args.url) as response:
                    body = await response.json()
                    if response.status != 200 or any(k not in body for k in REQUIRED):
                        raise SystemExit(f"aiohttp_client: bad response {response.status}")
                polls += 1

        await asyncio.gather(*(worker() for _ in range(args.connections)))
    print(f"polls={polls} connections={CountingConnector.created}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--url", "--ca", "--token", "--api-version", "--user-agent"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--connections", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
