"""Targets with the mistakes users make, for the tests of load-time checking (never run)."""

from __future__ import annotations

from typing import Any, ClassVar

from workbench import Client, Completion, Op, Options, Plan, Service, Topology, gen, ok


class GoodClient(Client):
    async def invoke(self, op: Op) -> Completion:
        return ok()


class TypoClient(Client):
    async def invoke(self, op: Op) -> Completion:
        return ok()

    def clasify(self, error: BaseException) -> str:  # meant: classify
        return "fail"


class SyncClient:
    def invoke(self, op: Op) -> Completion:  # meant: async def
        return ok()


def topology() -> Topology:
    return Topology(services=[Service.asgi("api", "nowhere:app")])


class _Base:
    name = "broken"
    description = "a target with a mistake in it"
    variants: ClassVar[dict[str, str]] = {"default": "the only one"}
    client: Any = GoodClient

    def plan(self, variant: str, options: Options) -> Plan:
        return Plan(
            topology=topology(),
            client=self.client,
            workload=gen.repeat(Op("noop")),
            checkers=["set"],
        )


class Good(_Base):
    pass


class NoPlan:
    name = "no-plan"
    description = "forgot plan()"
    variants: ClassVar[dict[str, str]] = {"default": "the only one"}

    def plann(self, variant: str, options: Options) -> Plan:  # meant: plan
        raise NotImplementedError


class NoDescription:
    name = "no-description"
    variants: ClassVar[dict[str, str]] = {"default": "the only one"}

    def plan(self, variant: str, options: Options) -> Plan:
        raise NotImplementedError


class PlanFieldTypo(_Base):
    def plan(self, variant: str, options: Options) -> Plan:
        return Plan(  # type: ignore[call-arg]
            topology=topology(),
            client=GoodClient,
            workload=gen.repeat(Op("noop")),
            checkers=["set"],
            op_timout=2.0,  # meant: op_timeout
        )


class ClientTypo(_Base):
    client = TypoClient


class ClientNotAsync(_Base):
    client = SyncClient


class UnknownChecker(_Base):
    def plan(self, variant: str, options: Options) -> Plan:
        return Plan(
            topology=topology(),
            client=GoodClient,
            workload=gen.repeat(Op("noop")),
            checkers=["no-such-checker"],
        )
