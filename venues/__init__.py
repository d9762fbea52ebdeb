"""Simulated venues behind one small interface (:class:`venues.interface.Venue`).

Commands in (:mod:`venues.commands`), immutable past-tense events out
(:mod:`venues.events`), time from an injected clock (:mod:`venues.clock`):

- :class:`venues.exchange.Exchange`: order books with price-time priority
  (:mod:`venues.book`), DAY/GTC/IOC/FOK, cancel/replace, a seeded market maker
  (:mod:`venues.liquidity`).
- :class:`venues.fund.FundCompany`: forward pricing at a daily NAV cut-off, NAVs from
  :mod:`venues.navs`.

Both keep their orders in a :class:`venues.registry.OrderRegistry`; they speak the order
vocabulary of :mod:`fixgw.orders`; their exceptions derive from
:class:`venues.errors.VenueError`.

Configuration: :mod:`venues.venue_config`. Benchmark: ``fixgw bench matching``
(:mod:`venues.bench`).
"""
