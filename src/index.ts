/** DoorKeeper as a library: the gateway, the agent, the DK chunk protocol and its multiplexer. */
export * from './protocol/index.ts';
export { makeHandshake, verifyHandshake, HANDSHAKE_SIZE, type Credential } from './auth/handshake.ts';
export { ReplayCache } from './auth/replay-cache.ts';
export { Mux, LinkDeadError, DEFAULT_WINDOW, type MuxInit } from './mux/mux.ts';
export { MuxSession, type SessionSink, type CloseReason } from './mux/session.ts';
export { bridge } from './mux/bridge.ts';
export { Gateway, type LiveSession, type FirstRun } from './gateway/gateway.ts';
export { startGateway, type RunningGateway } from './gateway/serve.ts';
export { Agent } from './agent/agent.ts';
export { loadGatewayConfig, GatewayConfigSchema, type GatewayConfig } from './config/gateway-config.ts';
export { loadAgentConfig, AgentConfigSchema, type AgentConfig } from './config/agent-config.ts';
export { ConfigError } from './config/errors.ts';
