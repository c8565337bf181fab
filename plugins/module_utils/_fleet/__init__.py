# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet planner (tuntap.qemu.fleet_plan): the inventory of every hypervisor validated at
once, then each host's plan.

    schema.py       the inventory's variables and guest keys (one source for docs and tests)
    records.py      typed records: Host, Guest, Resolved, and Problems (every error at once)
    topologies.py   the topology rule table: one Topology object per topology
    reading.py      host variables -> Host records (per-host checks)
    pools.py        addresses and subnets planned from pools
    checks.py       fleet-wide checks and the guests' gateways
    host_plan.py    a Host record -> the plan the roles hand to the modules
    planner.py      plan_fleet() and summary(): the steps in order
"""
