/** Commented config files written by `dk init`. */
export function gatewayTemplate(name: string, key: string, adminToken: string, dataDir = './dk-data'): string {
  return `# DoorKeeper gateway configuration (docs/configuration.md lists every key).
# Every key can also be set as an environment variable DK_<KEY> (e.g. DK_SERV_PORT) or a flag.
bind: 0.0.0.0            # address to listen on
serv_port: 35357         # agents connect here (SPEC §2)
mgmt_port: 3535          # HTTP management API
# access_ports: 35358-36357   # access ports are numbered upward from serv_port+1
data_dir: ${dataDir}      # state: SQLite (users, grants, audit log) and link_key; relative to this file
handshake: 10            # seconds an agent has to authenticate
idle_close: 600          # seconds a grant may go unused before it is dropped
auth_time: 3600          # seconds a grant lives at most
keepalive: 15            # seconds between PINGs; a link silent for 3x this is dead
trusted_proxies: []      # CIDRs whose X-Forwarded-For / Forwarded headers are believed
expose_ports: 1024-65535 # ports agents may publish static tunnels on
log_level: info
admin_token: ${adminToken}   # the admin's API token; keep it secret
backends:                # name: key pairs agents log in with
  ${name}:
    key: ${key}
`;
}

export function agentTemplate(gateway: string, name: string, key: string, gatewayKey: string | null): string {
  const link = gatewayKey
    ? `gateway_key: ${gatewayKey}   # the gateway's public key: the encrypted link talks to no other\n`
    : 'plain: true            # the seed\'s plain protocol: unencrypted, not resumable\n';
  return `# DoorKeeper agent configuration (docs/configuration.md lists every key).
gateway: ${gateway}    # the gateway's serv_port
${link}
name: ${name}          # backend name, as configured on the gateway
key: ${key}            # backend key, as configured on the gateway
# What this agent may dial. Default: only this host. CIDR[:PORTS], e.g.:
lan_nets:
  - 127.0.0.1/32
  - ::1/128
  # - 192.168.1.0/24:22,3389
# Static tunnels: publish a local service on a fixed gateway port.
expose: []
  # - remote_port: 8080
  #   local: 127.0.0.1:80
  #   allow: [203.0.113.0/24]   # empty = anyone
reconnect_min: 0.5     # seconds; backoff doubles up to reconnect_max, with jitter
reconnect_max: 30
data_dir: dk-agent-data   # beside this file: the agent's key for end-to-end dk connect links
log_level: info
`;
}
