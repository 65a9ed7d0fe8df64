"""The bare Django view the notify endpoint is compared with: parse JSON, answer 200."""

import json

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def bare(request):
    """Same server, same middleware as ``/api/accounts/notify/``; no signature, no database."""
    try:
        json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest()
    return HttpResponse(status=200)
