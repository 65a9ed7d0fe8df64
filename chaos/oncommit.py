"""``python -m chaos.oncommit``: finish orders and die in the on-commit window (scenario 3).

Reads ``[[tx_no, "pay" | "decline"], ...]`` as JSON on stdin and, in one transaction, moves
each order to its final status through payments' own service, which writes the notification
row and registers its broker enqueue with ``transaction.on_commit``. Before any of that, this
process registers an on-commit hook of its own that SIGKILLs the process: the transaction
commits, the first hook runs and the process is gone before any enqueue hook runs. Nothing
reaches the broker; only the outbox rows are left. Exit status -9 is the expected outcome.
"""

import json
import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chaos.settings")
    import django

    django.setup()
    from django.db import transaction

    from payments.services import recharge_order_decline, recharge_order_pay

    actions = {"pay": recharge_order_pay, "decline": recharge_order_decline}
    orders = json.load(sys.stdin)
    with transaction.atomic():
        transaction.on_commit(_die)  # first in line: runs before every enqueue hook
        for tx_no, action in orders:
            actions[action](tx_no=tx_no)
    print("still alive after commit: the on-commit hook did not run", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
