"""A tiny SMTP sink for the bench stack: accepts every message on 127.0.0.1 and drops it.

Only what Django's SMTP backend needs (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
It counts the messages and writes the count to the file given as second argument on exit,
so the bench can say how many alert emails the Celery worker delivered.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

delivered = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global delivered
    writer.write(b"220 bench-sink ESMTP\r\n")
    await writer.drain()
    in_data = False
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=120)
            if not line:
                break
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    delivered += 1
                    writer.write(b"250 OK queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-bench-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, count_file: Path | None) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if count_file is not None:
        count_file.write_text(str(delivered))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
