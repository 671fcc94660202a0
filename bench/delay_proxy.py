#!/usr/bin/env python3
"""TCP proxy adding DELAY ms each way: python3 delayproxy.py LISTEN_PORT TARGET_PORT DELAY_MS"""
import asyncio, sys
LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            due = loop.time() + DELAY
            await asyncio.sleep(max(0, due - loop.time()))
            writer.write(data); await writer.drain()
    except Exception: pass
    finally: writer.close()
async def handle(r, w):
    tr, tw = await asyncio.open_connection("127.0.0.1", TARGET)
    tw.get_extra_info("socket").setsockopt(6, 1, 1); w.get_extra_info("socket").setsockopt(6, 1, 1)
    await asyncio.gather(pipe(r, tw), pipe(tr, w))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server: await server.serve_forever()
asyncio.run(main())
