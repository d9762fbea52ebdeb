"""Helpers shared by several test folders, each starting a real part: ``broker`` (mosquitto on a
free loopback port), ``cluster`` (``fixgw up`` in real processes), ``fixclient`` (our engine as
a FIX initiator), ``at_process`` (``fixgw at-server`` as a child process)."""
