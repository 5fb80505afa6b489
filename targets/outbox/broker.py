"""The broker: Redis Streams, one per partition, read by one consumer group.

A message's fields are its event: ``event`` (uuid), ``order``, ``version``, ``status``,
``command``. Every client here fails fast (no retries inside redis-py): the loops that use them
decide what a failure means.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from targets.outbox.variants import GROUP, PARTITIONS, STREAM_PREFIX

STREAMS = tuple(f"{STREAM_PREFIX}.{p}" for p in range(PARTITIONS))
TIMEOUT = 2.0


def stream_of(order: str) -> str:
    """The stream an order's events go to (crc32: the same in every process, unlike hash())."""
    return STREAMS[zlib.crc32(order.encode()) % PARTITIONS]


def connect(url: str, *, timeout: float = TIMEOUT) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def fields(event: Mapping[str, Any]) -> dict[str, str]:
    """The stream entry of an event (``event``, ``order``, ``version``, ``status``,
    ``command``)."""
    return {k: str(event[k]) for k in ("event", "order", "version", "status", "command")}


async def publish(r: aioredis.Redis, event: Mapping[str, Any]) -> None:
    """XADD the event to its order's stream; raises on any failure (outcome unknown)."""
    await r.xadd(stream_of(str(event["order"])), fields(event))  # type: ignore[arg-type]


async def publish_all(r: aioredis.Redis, events: Sequence[Mapping[str, Any]]) -> None:
    """XADD every event, in order, in one round trip (a pipeline, not a transaction: a failure
    part-way leaves the earlier ones published, as separate XADDs would); raises on any
    failure."""
    if not events:
        return
    async with r.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(stream_of(str(event["order"])), fields(event))  # type: ignore[arg-type]
        await pipe.execute()


async def ensure_group(r: aioredis.Redis, stream: str) -> None:
    """The consumer group on ``stream``, from its start (after a volatile broker's restart the
    stream and group are gone and are made again)."""
    try:
        await r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
