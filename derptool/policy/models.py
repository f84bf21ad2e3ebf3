"""Pydantic models of a Tailscale policy file (``policy.hujson``), one per section.

The models describe the structure: section and member names exactly as Tailscale documents them, value
types, and what each member means. They are the source of the JSON Schema (:func:`policy_json_schema`)
and of the shape check in :mod:`derptool.policy.shape`, which matches keys case-insensitively as
Tailscale's server does (Go ``encoding/json``). Rules about the *values* (selectors, ports, tags being
declared, ...) live in :mod:`derptool.policy.checks`.

``null`` is accepted for every member, as Go's decoder accepts it (it leaves the zero value).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from derptool.derpmap import DERPMap

Selectors = list[str]


class _Section(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class ACL(_Section):
    """A legacy access rule (``acls[]``): who may reach which ``host:ports``."""

    action: str | None = Field(None, description='Only "accept" is supported.')
    src: Selectors | None = Field(None, description="Sources: users, group:, tag:, autogroup:, hosts, IPs, CIDRs, *.")
    dst: Selectors | None = Field(
        None, description='Destinations as "<host>:<ports>", ports "*", "22", "80,443", "1-100".'
    )
    users: Selectors | None = Field(None, description="Legacy name of src (do not use both).")
    ports: Selectors | None = Field(None, description="Legacy name of dst (do not use both).")
    proto: str | None = Field(None, description="IP protocol name or number; default TCP, UDP and ICMP.")
    src_posture: list[str] | None = Field(None, alias="srcPosture", description="Posture names the source must meet.")


class Grant(_Section):
    """A grant (``grants[]``): network access (``ip``) and/or application capabilities (``app``)."""

    src: Selectors | None = Field(None, description="Sources.")
    dst: Selectors | None = Field(None, description="Destinations (no ports: ports go in ip).")
    ip: list[str] | None = Field(None, description='Ports/protocols: "*", "22", "80-443", "tcp:443", "icmp:*".')
    app: dict[str, list[Any]] | None = Field(
        None, description="Capability name ({domain}/{path}) to a list of parameter objects."
    )
    src_posture: list[str] | None = Field(None, alias="srcPosture", description="Posture names the source must meet.")
    via: list[str] | None = Field(None, description="Tags of the routers or exit nodes the traffic must go through.")


class SSHRule(_Section):
    """A Tailscale SSH rule (``ssh[]``)."""

    action: str | None = Field(None, description='"accept" or "check".')
    src: Selectors | None = Field(None, description="Who may connect.")
    dst: Selectors | None = Field(None, description="Tags, autogroup:self, or users (the same user as src).")
    users: list[str] | None = Field(
        None, description="Login names on the destination, autogroup:nonroot, localpart:*@<domain>."
    )
    check_period: str | None = Field(
        None, alias="checkPeriod", description='Re-check interval for "check" (Go duration up to 168h, or "always").'
    )
    accept_env: list[str] | None = Field(
        None, alias="acceptEnv", description="Environment variable names (globs) to accept."
    )
    src_posture: list[str] | None = Field(None, alias="srcPosture", description="Posture names the source must meet.")
    recorder: list[str] | None = Field(None, description="Tags of session recorders.")
    enforce_recorder: bool | None = Field(
        None, alias="enforceRecorder", description="Refuse sessions when no recorder is reachable."
    )


class AutoApprovers(_Section):
    """Who may advertise routes and exit nodes without an admin approving them (``autoApprovers``)."""

    routes: dict[str, list[str]] | None = Field(None, description="Route (CIDR) to approvers.")
    exit_node: list[str] | None = Field(None, alias="exitNode", description="Approvers of exit nodes.")
    services: dict[str, list[str]] | None = Field(None, description="Service (svc:<name>) to approving tags.")


class AppConnector(_Section):
    """One app connector of ``nodeAttrs[].app["tailscale.com/app-connectors"]``."""

    name: str | None = Field(None, description="Display name.")
    connectors: list[str] | None = Field(None, description="Tags of the connector nodes.")
    domains: list[str] | None = Field(None, description="Domains routed through the connectors.")
    routes: list[str] | None = Field(None, description="Routes (CIDRs) routed through the connectors.")
    preset_app_id: str | None = Field(None, alias="presetAppID", description="Preset application ID.")


class NodeAttr(_Section):
    """Node attributes (``nodeAttrs[]``): capabilities given to the target nodes."""

    target: Selectors | None = Field(None, description="Nodes the attributes apply to.")
    attr: list[str] | None = Field(None, description="Node attributes, e.g. funnel, disable-ipv4, nextdns:<id>.")
    app: dict[str, list[Any]] | None = Field(None, description="Node capabilities with parameters (app connectors).")
    ip_pool: list[str] | None = Field(
        None, alias="ipPool", description="CIDRs inside 100.64.0.0/10 to assign addresses from."
    )


class ACLTest(_Section):
    """A policy test (``tests[]``): what a source may and may not reach."""

    src: str | None = Field(None, description="One user, group, tag or host.")
    src_posture_attrs: dict[str, Any] | None = Field(
        None, alias="srcPostureAttrs", description="Posture attributes of src."
    )
    proto: str | None = Field(None, description="IP protocol of the test (default TCP).")
    accept: list[str] | None = Field(None, description='"host:port" destinations that must be allowed.')
    deny: list[str] | None = Field(None, description='"host:port" destinations that must be denied.')
    user: str | None = Field(None, description="Legacy name of src.")
    allow: list[str] | None = Field(None, description="Legacy name of accept.")


class SSHTest(_Section):
    """An SSH test (``sshTests[]``)."""

    src: str | None = Field(None, description="The connecting user or tag.")
    dst: list[str] | None = Field(None, description="Destination hosts, users or tags.")
    accept: list[str] | None = Field(None, description="Login users that must be accepted.")
    check: list[str] | None = Field(None, description="Login users that must need a check.")
    deny: list[str] | None = Field(None, description="Login users that must be denied.")
    src_posture_attrs: dict[str, Any] | None = Field(
        None, alias="srcPostureAttrs", description="Posture attributes of src."
    )


class AttrConfig(_Section):
    """Definition of a custom node attribute (``attrConfig["custom:<name>"]``)."""

    type: str | None = Field(None, description='"string", "bool" or "number".')
    allow_set_by_node: bool | None = Field(None, alias="allowSetByNode", description="Nodes may set the attribute.")
    broadcast_to_peers: Selectors | None = Field(
        None, alias="broadcastToPeers", description="Peers that see the attribute."
    )


class DNSRecord(_Section):
    """An extra DNS record (``extraDNSRecords[]``)."""

    name: str | None = Field(None, alias="Name", description="Fully qualified name.")
    type: str | None = Field(None, alias="Type", description='Record type ("A" or "AAAA"; empty means by address).')
    value: str | None = Field(None, alias="Value", description="IP address.")


class Policy(_Section):
    """A whole tailnet policy file. Every section is optional."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        title="Tailscale policy file",
        json_schema_extra={
            "description": "Tailnet policy file (policy.hujson), as accepted by Tailscale's control plane. "
            "Member names match case-insensitively on the server; this schema lists the documented spelling."
        },
    )

    acls: list[ACL] | None = Field(None, description="Legacy access rules.")
    grants: list[Grant] | None = Field(None, description="Access grants (network and application).")
    ssh: list[SSHRule] | None = Field(None, description="Tailscale SSH rules.")
    groups: dict[str, list[str]] | None = Field(
        None,
        description='"group:<name>" to member logins.',
        json_schema_extra={"propertyNames": {"pattern": "^group:"}},
    )
    hosts: dict[str, str] | None = Field(None, description="Host alias to IP address or CIDR.")
    tag_owners: dict[str, list[str]] | None = Field(
        None,
        alias="tagOwners",
        description='"tag:<name>" to who may apply it ([] = admins).',
        json_schema_extra={"propertyNames": {"pattern": "^tag:[A-Za-z][A-Za-z0-9-]*$"}},
    )
    auto_approvers: AutoApprovers | None = Field(
        None, alias="autoApprovers", description="Route and exit-node auto-approval."
    )
    node_attrs: list[NodeAttr] | None = Field(None, alias="nodeAttrs", description="Node attributes.")
    postures: dict[str, list[str]] | None = Field(
        None,
        description='"posture:<name>" to conditions.',
        json_schema_extra={"propertyNames": {"pattern": "^posture:"}},
    )
    default_src_posture: list[str] | None = Field(
        None, alias="defaultSrcPosture", description="Postures applied to every rule without srcPosture."
    )
    ipsets: dict[str, list[str]] | None = Field(
        None,
        description='"ipset:<name>" to "add <target>" / "remove <target>".',
        json_schema_extra={"propertyNames": {"pattern": "^ipset:"}},
    )
    tests: list[ACLTest] | None = Field(None, description="Access tests run on every change.")
    ssh_tests: list[SSHTest] | None = Field(None, alias="sshTests", description="SSH tests run on every change.")
    derp_map: DERPMap | None = Field(
        None, alias="derpMap", description="Custom DERP regions; null regions remove default ones."
    )
    disable_ipv4: bool | None = Field(
        None, alias="disableIPv4", description="Deprecated: use the disable-ipv4 node attribute."
    )
    one_cgnat_route: str | None = Field(
        None, alias="OneCGNATRoute", description='"" (default), "mac-always" or "mac-never".'
    )
    randomize_client_port: bool | None = Field(
        None, alias="randomizeClientPort", description="Clients use a random UDP port."
    )
    attr_config: dict[str, AttrConfig] | None = Field(
        None, alias="attrConfig", description='"custom:<name>" attribute definitions.'
    )
    extra_dns_records: list[DNSRecord] | None = Field(
        None, alias="extraDNSRecords", description="Extra MagicDNS records."
    )


SECTION_MODELS: tuple[type[BaseModel], ...] = (
    Policy,
    ACL,
    Grant,
    SSHRule,
    AutoApprovers,
    AppConnector,
    NodeAttr,
    ACLTest,
    SSHTest,
    AttrConfig,
    DNSRecord,
)
