"""A tiny SMTP sink on 127.0.0.1 for the bench and soak stacks.

Only what Django's SMTP backend needs (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
`serve` speaks the protocol and hands each message to a callback; the bench counts them (run as
a script, it writes the count to the file given as second argument on exit), the soak keeps
them to read step-up codes (soak/run.py).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

OnMessage = Callable[[list[str], bytes], None]


async def serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_message: OnMessage, name: str = "sink"
) -> None:
    writer.write(f"220 {name} ESMTP\r\n".encode())
    await writer.drain()
    rcpt: list[str] = []
    data: list[bytes] | None = None
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=120)
            if not line:
                break
            if data is not None:
                if line in (b".\r\n", b".\n"):
                    on_message(rcpt, b"".join(data))
                    data, rcpt = None, []
                    writer.write(b"250 OK queued\r\n")
                    await writer.drain()
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(f"250-{name}\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".encode())
            elif verb == b"RCPT":
                found = re.search(rb"<([^>]*)>", line)
                rcpt.append(found.group(1).decode() if found else "")
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                data = []
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
    delivered = 0

    def count(_rcpt: list[str], _raw: bytes) -> None:
        nonlocal delivered
        delivered += 1

    server = await asyncio.start_server(lambda r, w: serve(r, w, count, "bench-sink"), "127.0.0.1", port)
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
