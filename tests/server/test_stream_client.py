"""Request limits and a client that hangs up mid-stream."""
import asyncio
import json


async def test_oversized_body_is_400(broker_api, provider, jp_serverapp):
    limit = jp_serverapp.web_app.settings["jupyter_securellm_max_request_bytes"]
    big = "x" * (limit + 10)
    code, body, _ = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": big}]})
    assert code == 400 and body["error"]["type"] == "invalid_request" and str(limit) in body["error"]["message"]
    assert provider.requests == []


async def test_client_hangs_up_mid_stream(broker_api, provider, jp_serverapp, jp_base_url, server_log):
    body = json.dumps({"model": "gpt", "stream": True,
                       "messages": [{"role": "user", "content": "a b c d e f g h [[provider:slow=0.2]]"}]}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_serverapp.port)
    token = jp_serverapp.identity_provider.token
    writer.write(
        f"POST {jp_base_url}jupyter-securellm/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: token {token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        .encode() + body)
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b"data: "), 20)
    assert b"200 OK" in first
    writer.close()  # hang up after the first chunk
    await asyncio.sleep(1.5)
    # the server is fine and serves the next call
    code, parsed, _ = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert code == 200
    assert "client closed the stream early" in server_log()
