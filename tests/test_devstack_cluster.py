"""The simulated cluster's broker side (devstack/cluster.py, devstack/broker.py), without
building a cluster: which broker its hosts are given, the RabbitMQ node's environment, and
the backlog read through another node's ``rabbitmqctl``."""

import sys
from pathlib import Path

from devstack.broker import Rabbitmqctl, rabbitmq_backlog
from devstack.cluster import Cluster

# Stands in for rabbitmqctl: prints a list_queues answer (tab-separated name, ready,
# unacknowledged) once it was asked for exactly that listing, else fails.
LISTING = """
import sys
assert sys.argv[1:4] == ["--quiet", "list_queues", "--no-table-headers"], sys.argv
assert sys.argv[4:6] == ["--vhost", "/"], sys.argv
print("ns.notifications\\t3\\t1")
print("ns.periodic\\t2\\t0")
print("other.notifications\\t7\\t7")
"""


def test_backlog_is_read_through_the_rabbitmqctl_given_and_counts_the_namespace_only():
    """``rabbitmq_backlog`` runs the ``Rabbitmqctl`` it is given (a cluster's node, not the
    machine's) and sums the namespace's queues named, no other namespace's."""
    stub = Rabbitmqctl(argv=(sys.executable, "-c", LISTING))
    backlog = rabbitmq_backlog(
        url="amqp://guest:guest@10.0.0.3:5672//",
        namespace="ns",
        queues=("notifications",),
        rabbitmqctl=stub,
    )
    assert backlog == {"queued": 3, "unacked": 1}


def test_the_cluster_broker_is_redis_unless_it_runs_a_rabbitmq_node(tmp_path):
    """Without ``rabbitmq`` the hosts' broker is the broker host's Redis; with it, the
    node's AMQP port on the broker host's address (the cache stays on Redis either way)."""
    redis_only = Cluster(log_dir=tmp_path)
    assert redis_only.broker_url == redis_only.redis_url
    cluster = Cluster(log_dir=tmp_path, rabbitmq=True)
    assert cluster.broker_url == f"amqp://guest:guest@{cluster.addresses['broker']}:5672//"
    assert cluster.redis_url.startswith(f"redis://{cluster.addresses['broker']}:")


def test_the_rabbitmq_node_and_its_cli_use_only_the_cluster_s_own_files(tmp_path):
    """The node's environment (the CLI's too) names its data, config, plugins, env file and
    cookie (HOME) in the cluster's directory and its logs in the log directory, so neither
    /etc/rabbitmq nor the machine's node's cookie or data is read; it listens on the broker
    host's address under a name of the run's own."""
    cluster = Cluster(log_dir=tmp_path / "logs", rabbitmq=True)
    cluster.rabbitmq_dir = tmp_path / "node"
    env = cluster.rabbitmqctl.env
    for name in (
        "HOME",
        "RABBITMQ_CONF_ENV_FILE",
        "RABBITMQ_CONFIG_FILE",
        "RABBITMQ_ENABLED_PLUGINS_FILE",
        "RABBITMQ_MNESIA_BASE",
    ):
        assert Path(env[name]).is_relative_to(tmp_path / "node"), name
    assert Path(env["RABBITMQ_LOG_BASE"]).is_relative_to(tmp_path / "logs")
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == cluster.addresses["broker"]
    assert env["RABBITMQ_NODENAME"] == f"c13{cluster.tag}@localhost"
    assert cluster.rabbitmqctl.argv[:4] == ("ip", "netns", "exec", cluster.namespaces["broker"])
