"""The minimal receiver: a WSGI app that reads the request and answers 204 (or 503 under
``/503/``, for the retry storm) and does nothing else. Run under gunicorn:
``gunicorn bench.receiver:app``. No Django, no signature check: the cheapest possible peer."""


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    status = (
        "503 Service Unavailable" if environ["PATH_INFO"].startswith("/503") else "204 No Content"
    )
    start_response(status, [("Content-Length", "0")])
    return [b""]
