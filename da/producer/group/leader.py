"""Leadership of the group: a lease on the leader key, kept alive by its own task.

`campaign()` grants a lease of `lease_seconds` and creates the leader key on it if nobody holds
it; the key's creation revision is the epoch every header commit is fenced with. While leading,
a task refreshes the lease every third of its time; the first refresh that fails (or finds the
lease expired) sets `lost`: the replica must stop producing at once. `release()` (graceful
stop, or stepping down) revokes the lease, which deletes the key so another replica can take
over without waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from da.errors import DAError
from da.metrics import GroupMetrics
from da.producer.group.etcd import Coordinator

log = logging.getLogger(__name__)


class Leadership:
    """This replica's claim on the leader key (at most one lease at a time)."""

    def __init__(
        self,
        coordinator: Coordinator,
        name: str,
        lease_seconds: int,
        metrics: GroupMetrics,
    ) -> None:
        self._coordinator = coordinator
        self._name = name
        self._lease_seconds = lease_seconds
        self._metrics = metrics
        self._lease_id: int | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.epoch = 0
        self.lost = asyncio.Event()

    @property
    def leading(self) -> bool:
        return self._lease_id is not None and not self.lost.is_set()

    async def campaign(self) -> bool:
        """Try to become leader; True if this replica now leads (with a new `epoch`)."""
        if self._lease_id is not None:
            raise RuntimeError("campaign while holding a lease")
        lease_id = await self._coordinator.grant_lease(self._lease_seconds)
        try:
            held = await self._coordinator.campaign(self._name, lease_id)
        except BaseException:
            await self._revoke(lease_id)
            raise
        if held.lease_id != lease_id:
            await self._revoke(lease_id)
            return False
        self._lease_id, self.epoch = lease_id, held.epoch
        self.lost = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep_alive(lease_id))
        self._metrics.set_leading(True)
        log.info("leading the group with epoch %d", self.epoch)
        return True

    async def release(self) -> None:
        """Stop leading: stop the keep-alive task and revoke the lease (best effort: an
        unreachable etcd lets the lease run out instead)."""
        lease_id, self._lease_id = self._lease_id, None
        if lease_id is None:
            return
        self.lost.set()
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._revoke(lease_id)
        self._metrics.set_leading(False)
        log.info("stopped leading (epoch %d)", self.epoch)

    async def _keep_alive(self, lease_id: int) -> None:
        """Refresh every third of the lease; the first failure ends the leadership."""
        interval = self._lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await asyncio.wait_for(self._coordinator.keep_alive(lease_id), interval)
            except (DAError, TimeoutError) as e:
                log.warning("lease keep-alive failed: %s", e)
                alive = False
            if not alive:
                log.warning("leader lease of epoch %d lost: stepping down", self.epoch)
                self.lost.set()
                return

    async def _revoke(self, lease_id: int) -> None:
        try:
            await self._coordinator.revoke(lease_id)
        except DAError as e:
            log.warning("could not revoke lease %x (it will expire): %s", lease_id, e)
