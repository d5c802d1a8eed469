/**
 * Every overlay under deploy/kubernetes/overlays, rendered with `kubectl
 * kustomize` as an operator applies it: each object is valid against the
 * Kubernetes, cert-manager and Prometheus Operator schemas (kubernetes-models),
 * and the set holds what running the gateway needs, wired together.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import type { IIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import { configKeys, parseEnvironment } from '@cakemail-smtp/gateway';
import { root } from './helpers.js';

const exec = promisify(execFile);
const overlaysDir = join(root, 'deploy/kubernetes/overlays');
const overlays = readdirSync(overlaysDir);

/** Any rendered object: the schemas check each one's shape, the tests read them through their models' types. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

interface Kinds {
  ConfigMap: IConfigMap;
  Deployment: IDeployment;
  Service: IService;
  PodDisruptionBudget: IPodDisruptionBudget;
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler;
  NetworkPolicy: INetworkPolicy;
  Certificate: ICertificate;
  Issuer: IIssuer;
  ServiceMonitor: IServiceMonitor;
  PrometheusRule: IPrometheusRule;
}

/** The model class of an apiVersion and kind: core and built-in groups, cert-manager, Prometheus Operator. */
async function modelOf(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg =
    group === 'cert-manager.io'
      ? '@kubernetes-models/cert-manager'
      : group === 'monitoring.coreos.com'
        ? '@kubernetes-models/prometheus-operator'
        : 'kubernetes-models';
  const path = group === '' ? `${pkg}/${version}/${kind}` : `${pkg}/${group}/${version}/${kind}`;
  const module = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = module[kind];
  if (!model) throw new Error(`no model for ${apiVersion} ${kind} in ${path}`);
  return model;
}

async function render(overlay: string): Promise<K8sObject[]> {
  return renderDir(join(overlaysDir, overlay));
}

async function renderDir(dir: string): Promise<K8sObject[]> {
  const { stdout } = await exec('kubectl', ['kustomize', dir], { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((doc) => {
    if (doc.errors.length > 0) throw doc.errors[0];
    return doc.toJS() as K8sObject;
  });
}

/** The settings that are secrets: from a Secret, never in the ConfigMap. */
const secretSettings = ['REDIS_URL', 'AUTH_LOCKOUT_KEY', 'QUEUE_ENCRYPTION_KEY'];

/** A kubernetes quantity in bytes (Ki, Mi, Gi or none). */
function bytesOf(quantity: string | number | undefined): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(String(quantity));
  if (!m) throw new Error(`not a byte quantity: ${String(quantity)}`);
  return Number(m[1]) * ({ Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? ''] ?? 1);
}

function all<K extends keyof Kinds>(objects: K8sObject[], kind: K): Kinds[K][] {
  return objects.filter((o) => o.kind === kind) as unknown as Kinds[K][];
}

function one<K extends keyof Kinds>(objects: K8sObject[], kind: K, name?: string): Kinds[K] {
  const found = all(objects, kind).filter((o) => name === undefined || o.metadata?.name === name);
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0] as Kinds[K];
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The Deployment's pod and its one container. */
function podOf(deployment: IDeployment) {
  const pod = deployment.spec?.template.spec;
  expect(pod?.containers).toHaveLength(1);
  const container = pod?.containers[0];
  if (!pod || !container) throw new Error('the Deployment has no pod template');
  return { pod, container, labels: deployment.spec?.template.metadata?.labels ?? {} };
}

it('has the production and aws-nlb overlays', () => {
  expect(overlays).toEqual(expect.arrayContaining(['production', 'aws-nlb']));
});

describe.each(overlays)('overlay %s', (overlay) => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await render(overlay);
  });
  const configData = (): Record<string, string> => one(objects, 'ConfigMap').data ?? {};

  it('renders objects that are all valid against their schemas', async () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const object of objects) {
      const Model = await modelOf(object.apiVersion, object.kind);
      expect(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
    }
    // a broken object is caught: the validator is really at work
    const deployment = one(objects, 'Deployment');
    const Model = await modelOf('apps/v1', 'Deployment');
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, replicas: 'three' } }).validate()).toThrow(/replicas/);
    expect(new Set(objects.map((o) => o.metadata.namespace ?? o.metadata.name))).toEqual(new Set(['smtp-gateway']));
  });

  it('runs a hardened Deployment with probes on the ops port, resources and spreading', () => {
    const deployment = one(objects, 'Deployment');
    const config = configData();
    const { pod, container, labels } = podOf(deployment);
    const portOf = (name: string): number | undefined => container.ports?.find((p) => p.name === name)?.containerPort;

    expect(portOf('ops')).toBe(8080);
    expect(portOf('ops')).toBe(Number(config['OPS_PORT']));
    expect(portOf('smtp')).toBe(Number(config['SMTP_PORT']));
    expect(portOf('smtps')).toBe(Number(config['SMTPS_PORT']));
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: 'ops' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: 'ops' });
    expect(container.resources?.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources?.limits?.['memory']).toEqual(expect.any(String));

    // restricted: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext?.capabilities?.add).toBeUndefined();
    expect(pod.hostNetwork).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);

    const spread = pod.topologySpreadConstraints ?? [];
    expect(spread.map((s) => s.topologyKey).sort()).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const s of spread) expect(matches(s.labelSelector?.matchLabels, labels)).toBe(true);
    expect(matches(deployment.spec?.selector.matchLabels, labels)).toBe(true);
  });

  it('gives the pod longer to stop than the gateway takes to drain', () => {
    const { pod } = podOf(one(objects, 'Deployment'));
    // the configuration the pod gets: the ConfigMap, and the gateway's own defaults for the rest
    const config = parseEnvironment(configData());
    // preStop runs first (it keeps serving while the pod leaves the endpoints), then the drain
    const command = podOf(one(objects, 'Deployment')).container.lifecycle?.preStop?.exec?.command ?? [];
    expect(command[0]).toBe('sleep');
    const preStopMs = Number(command[1]) * 1000;
    expect(preStopMs).toBeGreaterThanOrEqual(5000);
    expect((pod.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(preStopMs + config.SHUTDOWN_TIMEOUT_MS);
    expect(config.SHUTDOWN_TIMEOUT_MS).toBeGreaterThanOrEqual(config.UPSTREAM_DEADLINE_MS);
  });

  it('takes its configuration from the ConfigMap, and REDIS_URL, AUTH_LOCKOUT_KEY and QUEUE_ENCRYPTION_KEY from Secrets', () => {
    const { container } = podOf(one(objects, 'Deployment'));
    const configMap = one(objects, 'ConfigMap');
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata?.name } }]);
    expect(configMap.metadata?.name).toMatch(/^smtp-gateway-config-[a-z0-9]+$/);
    // optional: without the Secret the gateway starts with its memory stores
    expect(container.env).toEqual([
      { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'smtp-gateway-redis', key: 'url', optional: true } } },
      { name: 'AUTH_LOCKOUT_KEY', valueFrom: { secretKeyRef: { name: 'smtp-gateway-redis', key: 'lockout-key', optional: true } } },
      { name: 'QUEUE_ENCRYPTION_KEY', valueFrom: { secretKeyRef: { name: 'smtp-gateway-queue', key: 'encryption-key', optional: true } } },
    ]);
    for (const name of secretSettings) expect(configData()[name], name).toBeUndefined();
  });

  it('has only real gateway settings in its ConfigMap', () => {
    const keys = Object.keys(configData());
    expect(keys.length).toBeGreaterThan(5);
    expect(keys.filter((key) => !(configKeys as string[]).includes(key))).toEqual([]);
    // what the pod's environment adds is a setting too
    const { container } = podOf(one(objects, 'Deployment'));
    expect((container.env ?? []).map((e) => e.name).filter((name) => !(configKeys as string[]).includes(name))).toEqual([]);
  });

  it('starts with the Redis Secret made as docs/operations.md says, and without it', () => {
    const { container } = podOf(one(objects, 'Deployment'));
    // the environment kubelet makes: the ConfigMap, then env from the Secret's keys
    const secret: Record<string, string> = { url: 'rediss://:password@redis.example.internal:6379/0', 'lockout-key': 'k'.repeat(64) };
    const environment = (secretData: Record<string, string>, queueSecret: Record<string, string> = {}, config = configData()): Record<string, string> => {
      const env = { ...config };
      for (const e of container.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        const secrets: Record<string, Record<string, string>> = { 'smtp-gateway-redis': secretData, 'smtp-gateway-queue': queueSecret };
        const value = ref ? secrets[ref.name ?? '']?.[ref.key] : e.value;
        if (value !== undefined) env[e.name] = value;
      }
      return env;
    };
    const withRedis = parseEnvironment(environment(secret));
    expect(withRedis.REDIS_URL).toBe(secret['url']);
    expect(withRedis.AUTH_LOCKOUT_KEY).toBe(secret['lockout-key']);
    expect(withRedis.SHUTDOWN_TIMEOUT_MS).toBeGreaterThanOrEqual(withRedis.UPSTREAM_DEADLINE_MS);
    expect(parseEnvironment(environment({})).REDIS_URL).toBeUndefined();
    // a Secret with the url alone stops the start, naming the missing key
    expect(() => parseEnvironment(environment({ url: secret['url'] ?? '' }))).toThrow(/AUTH_LOCKOUT_KEY: required when REDIS_URL is set/);

    // queue mode, as docs/operations.md "Queue mode" enables it: QUEUE_MODE in the ConfigMap, the key from smtp-gateway-queue
    expect(configData()['QUEUE_MODE']).toBe('off');
    const queueConfig = { ...configData(), QUEUE_MODE: 'fallback' };
    const queueSecret = { 'encryption-key': Buffer.alloc(32, 5).toString('base64') };
    const queued = parseEnvironment(environment(secret, queueSecret, queueConfig));
    expect(queued.QUEUE_MODE).toBe('fallback');
    expect(queued.QUEUE_ENCRYPTION_KEY).toBe(queueSecret['encryption-key']);
    expect(() => parseEnvironment(environment(secret, {}, queueConfig))).toThrow(/QUEUE_ENCRYPTION_KEY: required when QUEUE_MODE=fallback/);
    expect(() => parseEnvironment(environment({}, queueSecret, queueConfig))).toThrow(/REDIS_URL: required when QUEUE_MODE=fallback/);
  });

  it('sizes MAX_INFLIGHT_BYTES for the memory limit, and alerts at 80% of it', () => {
    const { container } = podOf(one(objects, 'Deployment'));
    const config = parseEnvironment(configData());
    expect(config.MAX_INFLIGHT_BYTES).toBeGreaterThanOrEqual(config.MAX_MESSAGE_SIZE);
    // the README's MAX_INFLIGHT_BYTES row: about (limit - 130 MiB) / 12
    expect(130 * 1024 ** 2 + 12 * config.MAX_INFLIGHT_BYTES).toBeLessThanOrEqual(bytesOf(container.resources?.limits?.['memory']));
    const rules = (one(objects, 'PrometheusRule', 'smtp-gateway').spec.groups ?? []).flatMap((g) => g.rules ?? []);
    const high = rules.find((r) => r.alert === 'SmtpGatewayInflightBytesHigh');
    expect(String(high?.expr)).toContain(`smtp_gateway_inflight_message_bytes{job="smtp-gateway"}) > 0.8 * ${config.MAX_INFLIGHT_BYTES}`);
  });

  it('mounts the cert-manager Certificate’s Secret whole at /etc/smtp-gateway/tls', () => {
    const { pod, container } = podOf(one(objects, 'Deployment'));
    const certificate = one(objects, 'Certificate');
    const issuer = one(objects, 'Issuer');
    const volume = pod.volumes?.find((v) => v.secret?.secretName === certificate.spec?.secretName);
    expect(volume).toBeDefined();
    const mounts = container.volumeMounts ?? [];
    expect(mounts.filter((m) => m.name === volume?.name)).toEqual([{ name: volume?.name, mountPath: '/etc/smtp-gateway/tls', readOnly: true }]);
    expect(mounts.filter((m) => m.subPath !== undefined || m.subPathExpr !== undefined)).toEqual([]);
    expect(certificate.spec?.issuerRef).toMatchObject({ name: issuer.metadata?.name, kind: 'Issuer' });
    const config = parseEnvironment(configData());
    expect(config.TLS_CERT_PATH).toBe('/etc/smtp-gateway/tls/tls.crt');
    expect(config.TLS_KEY_PATH).toBe('/etc/smtp-gateway/tls/tls.key');
    expect(certificate.spec?.dnsNames).toContain(config.SMTP_HOSTNAME);
  });

  it('exposes 587 and 465, and has a PodDisruptionBudget, an autoscaler and a NetworkPolicy for the pods', () => {
    const deployment = one(objects, 'Deployment');
    const { labels } = podOf(deployment);
    const service = one(objects, 'Service', 'smtp-gateway');
    expect(service.spec?.type).toBe('LoadBalancer');
    expect(service.spec?.ports?.map((p) => [p.port, p.targetPort])).toEqual([
      [587, 'smtp'],
      [465, 'smtps'],
    ]);
    expect(matches(service.spec?.selector, labels)).toBe(true);
    expect(matches(one(objects, 'PodDisruptionBudget').spec?.selector?.matchLabels, labels)).toBe(true);
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata?.name });
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec?.replicas).toBeUndefined();
    const policy = one(objects, 'NetworkPolicy');
    expect(matches(policy.spec?.podSelector.matchLabels, labels)).toBe(true);
    expect(policy.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  it('is scraped by a ServiceMonitor and alerted on by a PrometheusRule', () => {
    const monitor = one(objects, 'ServiceMonitor');
    const ops = all(objects, 'Service').filter((o) => matches(monitor.spec.selector.matchLabels, o.metadata?.labels));
    expect(ops.map((o) => o.metadata?.name)).toEqual(['smtp-gateway-ops']);
    expect(ops[0]?.spec?.type).toBe('ClusterIP');
    expect(ops[0]?.spec?.ports).toEqual([{ name: 'ops', port: 8080, targetPort: 'ops', protocol: 'TCP' }]);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'ops', path: '/metrics' })]);
    // the alerts select job="smtp-gateway": the job label comes from the Service's name label
    expect(ops[0]?.metadata?.labels?.[monitor.spec.jobLabel ?? '']).toBe('smtp-gateway');
    const alerts = (one(objects, 'PrometheusRule', 'smtp-gateway').spec.groups ?? []).flatMap((g) => (g.rules ?? []).map((r) => r.alert));
    expect(new Set(alerts)).toEqual(
      new Set([
        'SmtpGatewayCertificateExpiringSoon',
        'SmtpGatewayUpstreamFailures',
        'SmtpGatewayAuthFailureSpike',
        'SmtpGatewayLimitRejections',
        'SmtpGatewayNoReadyReplica',
        'SmtpGatewayEventLoopLag',
        'SmtpGatewayProxyHeaderFailures',
        'SmtpGatewayInflightBytesHigh',
        'SmtpGatewayInflightBytesRejections',
        'SmtpGatewayBounceFailures',
      ]),
    );
    // the queue's alerts (the Component the base includes), in a PrometheusRule of their own with the same labels
    const rules = all(objects, 'PrometheusRule');
    expect(rules.map((r) => [r.metadata?.name, r.metadata?.namespace])).toEqual([
      ['smtp-gateway', 'smtp-gateway'],
      ['smtp-gateway-queue', 'smtp-gateway'],
    ]);
    expect(rules[1]?.metadata?.labels).toEqual(rules[0]?.metadata?.labels);
    const queueAlerts = (one(objects, 'PrometheusRule', 'smtp-gateway-queue').spec.groups ?? []).flatMap((g) => (g.rules ?? []).map((r) => r.alert));
    expect(new Set(queueAlerts)).toEqual(new Set(['SmtpGatewayQueueGrowing', 'SmtpGatewayQueueOldestMessage']));
  });
});

describe('how clients reach the gateway', () => {
  it('production: a LoadBalancer with externalTrafficPolicy Local, and no PROXY protocol', async () => {
    const objects = await render('production');
    expect(one(objects, 'Service', 'smtp-gateway').spec?.externalTrafficPolicy).toBe('Local');
    expect(one(objects, 'ConfigMap').data?.['PROXY_PROTOCOL']).toBeUndefined();
  });

  it('aws-nlb: an NLB sending PROXY protocol v2, trusted from its own subnets only, SMTP only from them, health-checked over HTTP', async () => {
    const objects = await render('aws-nlb');
    const service = one(objects, 'Service', 'smtp-gateway');
    expect(service.metadata?.annotations).toMatchObject({
      'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
      'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'http',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port': '8080',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/health/ready',
    });
    const data = one(objects, 'ConfigMap').data ?? {};
    expect(data['PROXY_PROTOCOL']).toBe('on');
    const cidrs = (data['PROXY_TRUSTED_CIDRS'] ?? '').split(',');
    for (const cidr of cidrs) expect(cidr).toMatch(/^(10|172|192)\.[0-9.]+\/\d+$/);
    // and the gateway itself takes them: PROXY_PROTOCOL=on loads only with its trusted ranges
    const config = parseEnvironment(data);
    expect(config.PROXY_PROTOCOL).toBe('on');
    expect(config.PROXY_TRUSTED_CIDRS).toEqual(cidrs);
    const { PROXY_TRUSTED_CIDRS: _, ...withoutTrusted } = data;
    expect(() => parseEnvironment(withoutTrusted)).toThrow(/PROXY_TRUSTED_CIDRS: required when PROXY_PROTOCOL=on/);
    // SMTP only from those addresses (no pod elsewhere can connect and claim an address), and
    // the NLB's health checks to the ops port from the same
    const ingress = one(objects, 'NetworkPolicy').spec?.ingress ?? [];
    const portsOf = (rule: (typeof ingress)[number]): unknown[] => (rule.ports ?? []).map((p) => p.port);
    const smtp = ingress.filter((rule) => portsOf(rule).includes('smtp'));
    expect(smtp).toHaveLength(1);
    expect(portsOf(smtp[0]!).sort()).toEqual(['smtp', 'smtps']);
    const cidrsOf = (rule: (typeof ingress)[number]): string[] => (rule.from ?? []).map((f) => f.ipBlock?.cidr ?? 'not an ipBlock');
    expect(cidrsOf(smtp[0]!)).toEqual(cidrs);
    const ops = ingress.filter((rule) => portsOf(rule).includes('ops') && (rule.from ?? []).some((f) => f.ipBlock));
    expect(ops.map(cidrsOf)).toEqual([cidrs]);
    expect(service.metadata?.annotations?.['service.beta.kubernetes.io/aws-load-balancer-subnets']).toBeTruthy();
  });
});
