"""What the cluster commands share: the default config, loading it, and the venues' listings.

``fixgw up``, ``node``, ``status``, ``order``, ``firm`` and ``bench --config`` all start from
a cluster config; a mistake in it is a :class:`CliError` (printed without a traceback). The
venues' listings are read here because the CLI is the one place that imports both
``venues`` (their configuration) and ``utilities`` (which routes by symbol).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fixgw.cli import CliError

if TYPE_CHECKING:
    from utilities.catalogue import VenueCatalogue
    from utilities.cluster_config import ClusterConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "local.toml"


def load_config(path: str | Path | None = None) -> ClusterConfig:
    """The cluster config at ``path`` (default: configs/local.toml)."""
    from utilities.cluster_config import ClusterConfigError, load_cluster_config

    try:
        return load_cluster_config(path or DEFAULT_CONFIG)
    except ClusterConfigError as exc:
        raise CliError(str(exc)) from None


def venue_catalogue(cfg: ClusterConfig) -> VenueCatalogue:
    """symbol -> venue and reference prices, from each venue's configuration."""
    from utilities.catalogue import VenueCatalogue
    from venues.errors import VenueConfigError
    from venues.venue_config import DEFAULT_VENUE_CONFIG, load_venue_config

    listings = {}
    for v in cfg.venues.values():
        try:
            vc = load_venue_config(v.config) if v.config is not None else DEFAULT_VENUE_CONFIG
        except VenueConfigError as exc:
            raise CliError(f"{cfg.source}: venue {v.name}: {exc}") from None
        listings[v.name] = vc.listing(v.kind)
    return VenueCatalogue.of(listings)
