/** The offline Kubernetes 1.27 / CRD schema check passes real-looking manifests and fails each kind of mistake. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValidManifests, QUANTITY_FIELDS, validateManifest } from '../helpers/k8s-schema';

type Obj = Record<string, any>; // test fixtures are edited freely

const labels = { 'app.kubernetes.io/name': 'm', 'app.kubernetes.io/instance': 'm-1' };
const secure = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: 10001,
  seccompProfile: { type: 'RuntimeDefault' },
};

const deployment = (): Obj => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'm', namespace: 'models', labels, annotations: { 'modelship.dev/config-hash': 'abc' } },
  spec: {
    replicas: 2,
    revisionHistoryLimit: 5,
    selector: { matchLabels: labels },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
    template: {
      metadata: { labels },
      spec: {
        automountServiceAccountToken: false,
        securityContext: { fsGroup: 10001, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        terminationGracePeriodSeconds: 70,
        initContainers: [
          {
            name: 'fetch-model',
            image: 'ghcr.io/modelship/runtime:0.1.0',
            args: ['fetch', '--uri', 'https://example.com/model.onnx'],
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: 1, memory: '512Mi' } },
            securityContext: secure,
            volumeMounts: [{ name: 'models', mountPath: '/models' }],
          },
        ],
        containers: [
          {
            name: 'runtime',
            image: 'ghcr.io/modelship/runtime:0.1.0',
            imagePullPolicy: 'IfNotPresent',
            args: ['serve', '--model-repository', '/models'],
            env: [
              { name: 'MODELSHIP_HTTP_PORT', value: '8080' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: 1 } } },
            ],
            ports: [
              { name: 'http', containerPort: 8080, protocol: 'TCP' },
              { name: 'grpc', containerPort: 8081 },
            ],
            readinessProbe: { httpGet: { path: '/v2/health/ready', port: 'http', scheme: 'HTTP' }, periodSeconds: 5, failureThreshold: 2 },
            livenessProbe: { httpGet: { path: '/v2/health/live', port: 8080 }, timeoutSeconds: 2 },
            startupProbe: { tcpSocket: { port: 8081 }, failureThreshold: 60, periodSeconds: 5 },
            lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
            resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
            securityContext: secure,
            volumeMounts: [
              { name: 'models', mountPath: '/models', readOnly: true },
              { name: 'tmp', mountPath: '/tmp' },
            ],
          },
        ],
        volumes: [
          { name: 'models', emptyDir: { sizeLimit: '2Gi' } },
          { name: 'tmp', emptyDir: { medium: 'Memory' } },
          { name: 'config', configMap: { name: 'm-model', items: [{ key: 'model.onnx', path: 'model.onnx' }], defaultMode: 0o444 } },
        ],
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: labels } },
          {
            maxSkew: 1,
            topologyKey: 'topology.kubernetes.io/zone',
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['m'] }] },
          },
        ],
      },
    },
  },
});

const service = (): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'm', labels },
  spec: {
    type: 'ClusterIP',
    selector: labels,
    ports: [
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'grpc', port: 8081, targetPort: 8081, appProtocol: 'grpc' },
    ],
  },
});

const pdb = (): Obj => ({
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  metadata: { name: 'm' },
  spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
});

const networkPolicy = (): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'm' },
  spec: {
    podSelector: { matchLabels: labels },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }],
        ports: [{ port: 'http', protocol: 'TCP' }, { port: 8081 }],
      },
    ],
    egress: [{ to: [{ podSelector: {} }], ports: [{ port: 53, protocol: 'UDP' }] }],
  },
});

const hpa = (): Obj => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: 'm' },
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'm' },
    minReplicas: 2,
    maxReplicas: 10,
    metrics: [
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      { type: 'Pods', pods: { metric: { name: 'modelship_inference_in_flight_requests' }, target: { type: 'AverageValue', averageValue: '4' } } },
    ],
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }] },
      scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
    },
  },
});

const configMap = (): Obj => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'm-model' },
  data: { 'config.pbtxt': 'name: "m"' },
  binaryData: { 'model.onnx': Buffer.from([8, 7, 18, 4]).toString('base64') },
});

const scaledObject = (): Obj => ({
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'ScaledObject',
  metadata: { name: 'm', namespace: 'models', labels },
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'm' },
    minReplicaCount: 2,
    maxReplicaCount: 10,
    pollingInterval: 15,
    cooldownPeriod: 300,
    fallback: { failureThreshold: 3, replicas: 4 },
    advanced: {
      horizontalPodAutoscalerConfig: {
        behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] } },
      },
    },
    triggers: [
      {
        type: 'prometheus',
        metricType: 'AverageValue',
        metadata: { serverAddress: 'http://prometheus-operated.monitoring.svc:9090', query: 'sum(up)', threshold: '4' },
      },
    ],
  },
});

const serviceMonitor = (): Obj => ({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'ServiceMonitor',
  metadata: { name: 'm', labels: { release: 'prometheus' } },
  spec: {
    selector: { matchLabels: labels },
    namespaceSelector: { matchNames: ['models'] },
    endpoints: [
      {
        port: 'http',
        path: '/metrics',
        interval: '30s',
        scrapeTimeout: '10s',
        relabelings: [{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'pod' }],
      },
    ],
  },
});

const podMonitor = (): Obj => ({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PodMonitor',
  metadata: { name: 'm' },
  spec: { selector: { matchLabels: labels }, podMetricsEndpoints: [{ port: 'http', path: '/metrics', interval: '15s' }] },
});

const prometheusRule = (): Obj => ({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: { name: 'm' },
  spec: {
    groups: [
      {
        name: 'modelship',
        interval: '1m',
        rules: [
          { record: 'modelship:requests:rate5m', expr: 'sum(rate(modelship_requests_total[5m]))' },
          {
            alert: 'ModelshipHighErrorRate',
            expr: 'sum(rate(modelship_errors_total[5m])) > 0.05',
            for: '10m',
            labels: { severity: 'warning' },
            annotations: { summary: 'High error rate' },
          },
        ],
      },
    ],
  },
});

const rbac = (): Obj[] => [
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'm' }, automountServiceAccountToken: false },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'm' }, type: 'Opaque', data: { token: 'c2VjcmV0' }, stringData: { plain: 'x' } },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'm' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'watch'] }] },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'm' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'm' },
    subjects: [{ kind: 'ServiceAccount', name: 'm', namespace: 'models' }],
  },
];

const valid = (): Obj[] => [
  deployment(), service(), pdb(), networkPolicy(), hpa(), configMap(), scaledObject(), serviceMonitor(), podMonitor(), prometheusRule(), ...rbac(),
];

/** The problems of `obj` after `edit`, which must contain each expected line exactly. */
function problemsAfter(make: () => Obj, edit: (o: Obj) => void): string[] {
  const obj = make();
  edit(obj);
  return validateManifest(obj);
}

function assertProblem(problems: string[], expected: string | RegExp): void {
  const found = problems.some((p) => (typeof expected === 'string' ? p === expected : expected.test(p)));
  assert.ok(found, `expected a problem ${String(expected)}, got:\n  ${problems.join('\n  ') || '(none)'}`);
}

describe('k8s schema check: valid manifests pass', () => {
  for (const obj of valid()) {
    it(`${obj.apiVersion} ${obj.kind}`, () => {
      assert.deepEqual(validateManifest(obj), []);
    });
  }

  it('assertValidManifests accepts them all together', () => {
    assert.doesNotThrow(() => assertValidManifests(valid()));
  });

  it('knows every built-in kind the constructs may emit', () => {
    for (const [apiVersion, kind] of [
      ['apps/v1', 'StatefulSet'], ['batch/v1', 'Job'], ['v1', 'PersistentVolumeClaim'], ['networking.k8s.io/v1', 'Ingress'],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole'], ['v1', 'Event'], ['events.k8s.io/v1', 'Event'], ['keda.sh/v1alpha1', 'TriggerAuthentication'],
      ['monitoring.coreos.com/v1', 'Probe'],
    ]) {
      const problems = validateManifest({ apiVersion, kind, metadata: { name: 'x' } });
      assert.ok(!problems.some((p) => p.includes('no schema')), `${apiVersion} ${kind}: ${problems.join('; ')}`);
    }
  });

  it('accepts Quantity as a number or a string, and null as an unset field', () => {
    assert.deepEqual(problemsAfter(deployment, (d) => {
      d.spec.template.spec.containers[0].resources = { limits: { cpu: 2, 'nvidia.com/gpu': 1 }, requests: { cpu: 0.5, memory: '1Gi' } };
      d.spec.template.spec.containers[0].lifecycle = null;
    }), []);
  });
});

describe('k8s schema check: mistakes fail with a precise path', () => {
  it('an unknown field at depth', () => {
    const problems = problemsAfter(deployment, (d) => {
      d.spec.template.spec.containers[0].readinessProbe.httpGett = d.spec.template.spec.containers[0].readinessProbe.httpGet;
      delete d.spec.template.spec.containers[0].readinessProbe.httpGet;
    });
    assertProblem(problems, 'spec.template.spec.containers[0].readinessProbe.httpGett: unknown field (did you mean "httpGet"?)');
  });

  it('a misspelled securityContext field, in a container and in the pod', () => {
    const problems = problemsAfter(deployment, (d) => {
      d.spec.template.spec.containers[0].securityContext = { runAsNonRoot: true, seccompProfle: { type: 'RuntimeDefault' } };
      d.spec.template.spec.securityContext.fsgroup = 1;
    });
    assertProblem(problems, /^spec\.template\.spec\.containers\[0\]\.securityContext\.seccompProfle: unknown field/);
    assertProblem(problems, /^spec\.template\.spec\.securityContext\.fsgroup: unknown field \(did you mean "fsGroup"\?\)/);
  });

  it('unknown fields at the top, in metadata and in an initContainer', () => {
    const problems = problemsAfter(deployment, (d) => {
      d.status2 = {};
      d.metadata.label = {};
      d.spec.template.spec.initContainers[0].volumeMount = [];
    });
    assertProblem(problems, /^status2: unknown field/);
    assertProblem(problems, /^metadata\.label: unknown field \(did you mean "labels"\?\)/);
    assertProblem(problems, /^spec\.template\.spec\.initContainers\[0\]\.volumeMount: unknown field/);
  });

  it('a field that Kubernetes added after 1.27', () => {
    const problems = problemsAfter(deployment, (d) => {
      d.spec.template.spec.initContainers[0].restartPolicy = 'Always'; // sidecar containers: 1.28
    });
    assert.deepEqual(problems, ['spec.template.spec.initContainers[0].restartPolicy: unknown field (not in the Kubernetes 1.27 schema)']);
  });

  it('wrong types: replicas "2", containerPort "8080", runAsNonRoot "true"', () => {
    const problems = problemsAfter(deployment, (d) => {
      d.spec.replicas = '2';
      d.spec.template.spec.containers[0].ports[0].containerPort = '8080';
      d.spec.template.spec.containers[0].securityContext = { ...secure, runAsNonRoot: 'true' };
    });
    assertProblem(problems, 'spec.replicas: expected integer, got string "2"');
    assertProblem(problems, 'spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string "8080"');
    assertProblem(problems, 'spec.template.spec.containers[0].securityContext.runAsNonRoot: expected boolean, got string "true"');
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  it('more wrong types: a number label, a fractional integer, an object IntOrString, a bad quantity, bad base64', () => {
    assertProblem(problemsAfter(deployment, (d) => (d.metadata.labels = { version: 1 })), 'metadata.labels.version: expected string, got integer 1');
    assertProblem(problemsAfter(deployment, (d) => (d.spec.replicas = 1.5)), 'spec.replicas: expected integer, got number 1.5');
    assertProblem(problemsAfter(service, (s) => (s.spec.ports[0].targetPort = { name: 'http' })), 'spec.ports[0].targetPort: expected integer or string, got object');
    assertProblem(
      problemsAfter(deployment, (d) => (d.spec.template.spec.containers[0].resources.limits.memory = '2 GiB')),
      /^spec\.template\.spec\.containers\[0\]\.resources\.limits\.memory: expected number or string in quantity format, got string "2 GiB"$/,
    );
    assertProblem(problemsAfter(configMap, (c) => (c.binaryData['model.onnx'] = 'not base64!')), 'binaryData["model.onnx"]: expected base64 string, got string "not base64!"');
  });

  it('a value outside an enum', () => {
    assertProblem(
      problemsAfter(service, (s) => (s.spec.type = 'ClusterIp')),
      'spec.type: must be one of "ClusterIP", "ExternalName", "LoadBalancer", "NodePort", got string "ClusterIp"',
    );
  });

  it('missing required fields: a container without name, a Service port without port', () => {
    assert.deepEqual(
      problemsAfter(deployment, (d) => delete d.spec.template.spec.containers[0].name),
      ['spec.template.spec.containers[0].name: missing required field'],
    );
    assert.deepEqual(problemsAfter(service, (s) => delete s.spec.ports[1].port), ['spec.ports[1].port: missing required field']);
    assertProblem(problemsAfter(deployment, (d) => delete d.spec.selector), 'spec.selector: missing required field');
  });

  it('HPA v2: an unknown metric source field and a string averageUtilization', () => {
    const problems = problemsAfter(hpa, (h) => {
      h.spec.metrics[0].resource.target.averageUtilization = '70';
      h.spec.metrics[1].pods.metrics = h.spec.metrics[1].pods.metric;
    });
    assertProblem(problems, 'spec.metrics[0].resource.target.averageUtilization: expected integer, got string "70"');
    assertProblem(problems, /^spec\.metrics\[1\]\.pods\.metrics: unknown field/);
  });

  it('ScaledObject: an unknown trigger field, a missing scaleTargetRef, a wrong type', () => {
    const problems = problemsAfter(scaledObject, (s) => {
      s.spec.triggers[0].metadatas = {};
      delete s.spec.scaleTargetRef;
      s.spec.minReplicaCount = '2';
    });
    assertProblem(problems, /^spec\.triggers\[0\]\.metadatas: unknown field/);
    assertProblem(problems, 'spec.scaleTargetRef: missing required field');
    assertProblem(problems, 'spec.minReplicaCount: expected integer, got string "2"');
  });

  it('ScaledObject: unknown fields deep in the HPA behavior and in the spec', () => {
    const problems = problemsAfter(scaledObject, (s) => {
      s.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilisationWindowSeconds = 60;
      s.spec.fallbak = {};
    });
    assertProblem(problems, /^spec\.advanced\.horizontalPodAutoscalerConfig\.behavior\.scaleDown\.stabilisationWindowSeconds: unknown field/);
    assertProblem(problems, 'spec.fallbak: unknown field (did you mean "fallback"?)');
  });

  it('PrometheusRule: a rule with an unknown key', () => {
    assert.deepEqual(
      problemsAfter(prometheusRule, (r) => (r.spec.groups[0].rules[1].label = { severity: 'page' })),
      ['spec.groups[0].rules[1].label: unknown field (did you mean "labels"?)'],
    );
  });

  it('ServiceMonitor: an unknown endpoint key, a bad duration, a bad relabel action', () => {
    const problems = problemsAfter(serviceMonitor, (m) => {
      m.spec.endpoints[0].targetPorts = 8080;
      m.spec.endpoints[0].interval = '30 seconds';
      m.spec.endpoints[0].relabelings[0].action = 'rename';
    });
    assertProblem(problems, /^spec\.endpoints\[0\]\.targetPorts: unknown field/);
    assertProblem(problems, /^spec\.endpoints\[0\]\.interval: must match the pattern .*, got string "30 seconds"$/);
    assertProblem(problems, /^spec\.endpoints\[0\]\.relabelings\[0\]\.action: must be one of .*, got string "rename"$/);
  });

  it('Gateway API routes (vendored CRDs): an unknown field, a weight and a mirror percent out of range, a missing parentRef name', () => {
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r' },
      spec: {
        parentRefs: [{ kinnd: 'Gateway' }],
        rules: [{
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'm', port: 8080 }, percent: 101 } }],
          backendRefs: [{ name: 's', port: 8080, weight: -1 }],
        }],
      },
    };
    const problems = validateManifest(route);
    assertProblem(problems, /^spec\.parentRefs\[0\]\.kinnd: unknown field \(did you mean "kind"\?\)$/);
    assertProblem(problems, /^spec\.parentRefs\[0\]\.name: missing required field$/);
    assertProblem(problems, /^spec\.rules\[0\]\.backendRefs\[0\]\.weight: /);
    assertProblem(problems, /^spec\.rules\[0\]\.filters\[0\]\.requestMirror\.percent: /);
    assert.deepEqual(validateManifest({ ...route, spec: { parentRefs: [{ name: 'g' }], rules: [{ backendRefs: [{ name: 's', port: 8080, weight: 1 }] }] } }), []);
  });

  it('an unknown kind or apiVersion is never silently valid', () => {
    assert.deepEqual(validateManifest({ apiVersion: 'v1', kind: 'Servcie', metadata: { name: 'x' } }), ['(root): no schema for v1 Servcie']);
    assertProblem(validateManifest({ apiVersion: 'apps/v1beta1', kind: 'Deployment' }), /^\(root\): no schema for apps\/v1beta1 Deployment/);
    assertProblem(validateManifest({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledThing' }), /^\(root\): no schema for keda\.sh\/v1alpha1 ScaledThing/);
    assertProblem(validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget' }), '(root): no schema for example.com/v1 Widget');
    // Gateway is a kind of the group, but its CRD is not vendored.
    assertProblem(validateManifest({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' }), /^\(root\): no schema for gateway\.networking\.k8s\.io\/v1 Gateway \(not a served kind of the CRDs in test\/fixtures\/crds\/gateway-api-v1\.3\.0-standard\)$/);
    assertProblem(validateManifest({ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim' }), /no schema for resource\.k8s\.io\/v1 ResourceClaim in Kubernetes 1\.27/);
    assertProblem(validateManifest({ apiVersion: 'v1', kind: 'Container' }), '(root): no schema for v1 Container');
    assertProblem(validateManifest({ kind: 'Service' }), /^apiVersion: expected a non-empty string/);
    assertProblem(validateManifest('kind: Service'), /^\(root\): expected a Kubernetes object/);
  });

  it('assertValidManifests lists every problem, prefixed by kind/name', () => {
    const bad = deployment();
    bad.spec.replicas = '2';
    const rule = prometheusRule();
    rule.spec.groups[0].rules[0].exp = rule.spec.groups[0].rules[0].expr;
    delete rule.spec.groups[0].rules[0].expr;
    assert.throws(
      () => assertValidManifests([service(), bad, rule, { apiVersion: 'v1', kind: 'Nope', metadata: { name: 'n' } }]),
      (error: Error) => {
        assert.match(error.message, /4 schema problem\(s\) in 3 of 4 manifest\(s\)/);
        assert.match(error.message, /^ {2}Deployment\/m: spec\.replicas: expected integer, got string "2"$/m);
        assert.match(error.message, /^ {2}PrometheusRule\/m: spec\.groups\[0\]\.rules\[0\]\.exp: unknown field/m);
        assert.match(error.message, /^ {2}PrometheusRule\/m: spec\.groups\[0\]\.rules\[0\]\.expr: missing required field$/m);
        assert.match(error.message, /^ {2}Nope\/n: \(root\): no schema for v1 Nope$/m);
        return true;
      },
    );
  });
});

describe('k8s schema check: internals', () => {
  it('every QUANTITY_FIELDS entry is a string-typed field of a client-node model', () => {
    // The same ES module the helper loads; require(esm) works on the Node 20.19+ this project runs.
    const models = require('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js') as Record<string, { attributeTypeMap?: { baseName: string; type: string }[] }>;
    for (const entry of QUANTITY_FIELDS) {
      const [model, field] = entry.split('.');
      const type = models[model]?.attributeTypeMap?.find((a) => a.baseName === field)?.type;
      assert.ok(type === 'string' || type === '{ [key: string]: string; }', `${entry}: ${type}`);
    }
  });

  it('does not modify its input', () => {
    const obj = deployment();
    const before = JSON.stringify(obj);
    validateManifest(obj);
    assert.equal(JSON.stringify(obj), before);
  });
});
