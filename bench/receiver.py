"""The instant receiver: a WSGI app that reads the request and answers 204, and does nothing
else. Run under gunicorn: ``gunicorn bench.receiver:app``. No Django, no signature check:
the cheapest possible peer. (A receiver that misbehaves is the fault proxy, devstack.proxy.)"""


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("204 No Content", [("Content-Length", "0")])
    return [b""]
