// The two calls the Node publisher makes, over @kubernetes/client-node: read this node's
// Node, and send a strategic-merge patch of it or of its status. Nothing else of the API
// is used: the agent's RBAC needs exactly nodes get and patch, and nodes/status patch.
//
// The client is loaded when the agent has Kubernetes access, not before: it costs more
// than a second of start-up, and `warren-agent status` never needs it. Its v1 API sends
// JSON Patch for every patch call unless told otherwise; setHeaderOptions puts the
// strategic-merge content type on ours. Its errors become KubeApiErrors here, one line
// each (the client's own message carries the whole response, headers included).
import { existsSync } from 'node:fs';
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';
import { WarrenError, errorMessage } from '../../lib/errors.js';
import { AgentConfigError, type KubernetesSettings } from '../config.js';
import { REQUEST_TIMEOUT_MS } from './knobs.js';
import { NETWORK_UNAVAILABLE, type NodePatch, type NodeView } from './node-plan.js';

/** Where Kubernetes mounts a pod's service account token (client-node reads it from there). */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeApiError extends WarrenError {
  /** The HTTP status, when the API server answered. */
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown }) {
    super('KUBE_API_FAILED', message, options);
    this.status = status;
  }
}

export interface NodeApi {
  /** Where requests go, for logs. */
  readonly server: string;
  read(name: string): Promise<NodeView>;
  patch(name: string, patch: NodePatch): Promise<void>;
}

/** The parts of a Node the planner compares. */
export function nodeView(n: Pick<V1Node, 'metadata' | 'spec' | 'status'>): NodeView {
  const c = n.status?.conditions?.find((x) => x.type === NETWORK_UNAVAILABLE);
  return {
    annotations: n.metadata?.annotations ?? {},
    podCIDR: n.spec?.podCIDR || undefined,
    podCIDRs: n.spec?.podCIDRs ?? [],
    networkCondition: c && { status: c.status, reason: c.reason, message: c.message },
  };
}

/** One line: the API server's own message when it answered, the first line of the error otherwise. */
export function kubeErrorLine(status: number | undefined, body: unknown, fallback: string): string {
  let doc = body;
  if (typeof body === 'string') {
    try {
      doc = JSON.parse(body);
    } catch {
      doc = { message: body };
    }
  }
  const message = (doc as { message?: unknown } | undefined)?.message;
  const text = typeof message === 'string' && message ? message : fallback.split('\n')[0]!;
  return status === undefined ? text : `HTTP ${status}: ${text}`;
}

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KubeApiError(`${what}: no answer within ${REQUEST_TIMEOUT_MS} ms`, undefined)), REQUEST_TIMEOUT_MS);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Loads the client and the credentials: the kubeconfig file, else the pod's service account. Bad settings are AgentConfigErrors (exit 2). */
export async function openNodeApi(settings: KubernetesSettings): Promise<NodeApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  const source = settings.kubeconfig
    ? `kubernetes.kubeconfig ${JSON.stringify(settings.kubeconfig)}`
    : 'the pod\'s service account (kubernetes.kubeconfig not set)';
  if (settings.kubeconfig) {
    try {
      kc.loadFromFile(settings.kubeconfig);
    } catch (err) {
      throw new AgentConfigError(`${source} cannot be loaded: ${errorMessage(err).split('\n')[0]}`, { cause: err });
    }
  } else {
    if (!existsSync(SERVICE_ACCOUNT_TOKEN)) throw new AgentConfigError(`${source}: no token at ${SERVICE_ACCOUNT_TOKEN}; mount the service account's token or set kubernetes.kubeconfig`);
    kc.loadFromCluster();
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new AgentConfigError(`${source} names no current cluster with a server`);
  const api: CoreV1Api = kc.makeApiClient(k8s.CoreV1Api);
  const strategicMerge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await within(request(), what);
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      const status = err instanceof k8s.ApiException ? err.code : undefined;
      const body = err instanceof k8s.ApiException ? err.body : undefined;
      throw new KubeApiError(`${what}: ${kubeErrorLine(status, body, errorMessage(err))}`, status, { cause: err });
    }
  };
  return {
    server,
    read: async (name) => nodeView(await call(`GET node ${name}`, () => api.readNode({ name }))),
    patch: async (name, p) => {
      if (p.target === 'status') await call(`PATCH node ${name} status`, () => api.patchNodeStatus({ name, body: p.body }, strategicMerge));
      else await call(`PATCH node ${name}`, () => api.patchNode({ name, body: p.body }, strategicMerge));
    },
  };
}
