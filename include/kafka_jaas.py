"""The Java Kafka client's login (`sasl.jaas.config`) for librdkafka-named settings, which is how
the pipeline names a Kafka login everywhere else. Standard library only: the Spark job imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def jaas_config(security: Mapping[str, str]) -> str:
    """`sasl.jaas.config` for settings with `sasl.mechanism` (PLAIN or a SCRAM), `sasl.username`
    and `sasl.password`. It carries the password: it belongs in a file or an environment, never
    on a command line."""
    module = {"PLAIN": "plain.PlainLoginModule"}.get(security["sasl.mechanism"],
                                                     "scram.ScramLoginModule")
    return (f"org.apache.kafka.common.security.{module} required "
            f"username={json.dumps(security['sasl.username'])} "
            f"password={json.dumps(security['sasl.password'])};")
