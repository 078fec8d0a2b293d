/**
 * Who `ModelSource.fromUri`'s init container is to the store it fetches from: keys or a key file from a Secret, or
 * the workload identity of a Kubernetes service account (IRSA, EKS Pod Identity, GKE Workload Identity). What each
 * becomes depends on the URI's scheme, so a source binds them with the scheme it was given: env variables from Secret
 * keys for s3://, a mounted key file for gs://, a mounted docker config for oci://.
 */
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import type { ModelUriScheme } from '@modelship/contract';
import { tcpEgress } from './network';
import { checkDataKey } from './validation';

/** Where the init container finds a credentials file mounted from a Secret. */
const MODEL_CREDENTIALS_DIR = '/etc/modelship/model-credentials';

export interface ModelCredentialsSecretOptions {
  /**
   * gs:// and oci://: the Secret's key that holds the file: a service-account key (JSON) for gs://, a docker
   * config (`{"auths": {...}}`) for oci://. It is mounted read-only, in the directory CLOUDSDK_CONFIG or
   * DOCKER_CONFIG names.
   * @default 'key.json' for gs://, '.dockerconfigjson' for oci:// (the key of a kubernetes.io/dockerconfigjson Secret)
   */
  readonly key?: string;
  /**
   * s3://: the Secret's key that holds the access key id, given to the init container as AWS_ACCESS_KEY_ID.
   * @default 'AWS_ACCESS_KEY_ID'
   */
  readonly accessKeyIdKey?: string;
  /**
   * s3://: the Secret's key that holds the secret access key, given as AWS_SECRET_ACCESS_KEY.
   * @default 'AWS_SECRET_ACCESS_KEY'
   */
  readonly secretAccessKeyKey?: string;
  /**
   * s3://: the Secret's key that holds a session token, for temporary keys, given as AWS_SESSION_TOKEN.
   * @default - none: long-lived keys
   */
  readonly sessionTokenKey?: string;
}

/** What credentials add to the init container and the pod. */
export interface ModelCredentialsConfig {
  readonly env: Record<string, kplus.EnvValue>;
  readonly volumeMounts: kplus.VolumeMount[];
  /** The pod's service account, for workload identity. */
  readonly serviceAccount?: kplus.IServiceAccount;
  /** NetworkPolicy egress the credentials need besides the store's own port (STS, a metadata server). */
  readonly egress: kplus.k8s.NetworkPolicyEgressRule[];
}

/** Object names (Secrets, ServiceAccounts): a DNS subdomain, as the API server checks them. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkObjectName(what: string, name: string): string {
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new Error(`ModelCredentials.${what} ('${name}') is not a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
  return name;
}

export abstract class ModelCredentials {
  /**
   * Credentials in a Secret of the pod's namespace. For s3:// the init container gets AWS_ACCESS_KEY_ID,
   * AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN with `sessionTokenKey`) from its keys; for gs:// the
   * service-account key file is mounted as the application default credentials (application_default_credentials.json
   * in CLOUDSDK_CONFIG, where Google's libraries look too); for oci:// the docker config
   * (a kubernetes.io/dockerconfigjson Secret, as `kubectl create secret docker-registry` makes) is mounted as
   * config.json and named by DOCKER_CONFIG. Only the init container sees them.
   * @param secret the Secret, or its name (what a Pulumi program, which has no cdk8s scope, can give)
   */
  static fromSecret(secret: kplus.ISecret | string, options: ModelCredentialsSecretOptions = {}): ModelCredentials {
    const name = checkObjectName('fromSecret', typeof secret === 'string' ? secret : secret.name);
    for (const prop of ['key', 'accessKeyIdKey', 'secretAccessKeyKey', 'sessionTokenKey'] as const) {
      const value = options[prop];
      if (value !== undefined) checkDataKey(prop, value, 'a Secret');
    }
    return new SecretCredentials(secret, name, options);
  }

  /**
   * The workload identity of a Kubernetes service account the pod runs as (its `serviceAccountName`): for s3://,
   * IRSA (annotate the service account with `eks.amazonaws.com/role-arn`) or EKS Pod Identity (an association for
   * it); for gs://, GKE Workload Identity (annotate it with `iam.gke.io/gcp-service-account`, or grant its
   * principal access to the bucket). Annotating it is up to you: modelship only names it. The service account
   * applies to the whole pod, the runtime container too, whose service-account token is still not mounted.
   * @param serviceAccount the service account, or its name
   */
  static fromServiceAccount(serviceAccount: kplus.IServiceAccount | string): ModelCredentials {
    const name = checkObjectName('fromServiceAccount', typeof serviceAccount === 'string' ? serviceAccount : serviceAccount.name);
    return new ServiceAccountCredentials(serviceAccount, name);
  }

  /** How the factory call reads in an error message. @internal */
  abstract readonly description: string;

  /** Throws when these credentials do not apply to `scheme`, saying what to use instead. @internal */
  abstract check(scheme: ModelUriScheme): void;

  /** @internal */
  abstract bind(scope: Construct, scheme: ModelUriScheme): ModelCredentialsConfig;
}

class SecretCredentials extends ModelCredentials {
  readonly description: string;

  constructor(private readonly secret: kplus.ISecret | string, private readonly name: string, private readonly options: ModelCredentialsSecretOptions) {
    super();
    this.description = `ModelCredentials.fromSecret('${name}')`;
  }

  check(scheme: ModelUriScheme): void {
    const given = (props: readonly (keyof ModelCredentialsSecretOptions)[]) => props.filter((prop) => this.options[prop] !== undefined);
    if (scheme === 'https' || scheme === 'http') {
      throw new Error(`ModelSource.fromUri: 'credentials' (${this.description}) does not apply to ${scheme}:// URIs; give a pre-signed URL, or use s3://, gs:// or oci://`);
    }
    const wrong = scheme === 's3' ? given(['key']) : given(['accessKeyIdKey', 'secretAccessKeyKey', 'sessionTokenKey']);
    if (wrong.length > 0) {
      const applies = scheme === 's3' ? "'accessKeyIdKey', 'secretAccessKeyKey' and 'sessionTokenKey'" : "'key'";
      throw new Error(`ModelSource.fromUri: ${this.description} was given ${wrong.map((p) => `'${p}' ('${this.options[p]}')`).join(', ')}, which ${wrong.length > 1 ? 'do' : 'does'} not apply to ${scheme}:// URIs; for ${scheme}:// use ${applies}`);
    }
  }

  bind(scope: Construct, scheme: ModelUriScheme): ModelCredentialsConfig {
    const secret = typeof this.secret === 'string' ? kplus.Secret.fromSecretName(scope, 'ModelCredentialsSecret', this.secret) : this.secret;
    if (scheme === 's3') {
      const value = (key: string, optional = false) => kplus.EnvValue.fromSecretValue({ secret, key }, { optional });
      return {
        env: {
          AWS_ACCESS_KEY_ID: value(this.options.accessKeyIdKey ?? 'AWS_ACCESS_KEY_ID'),
          AWS_SECRET_ACCESS_KEY: value(this.options.secretAccessKeyKey ?? 'AWS_SECRET_ACCESS_KEY'),
          ...(this.options.sessionTokenKey ? { AWS_SESSION_TOKEN: value(this.options.sessionTokenKey) } : {}),
        },
        volumeMounts: [],
        egress: [],
      };
    }
    const gcs = scheme === 'gs';
    // Named by a directory variable, not GOOGLE_APPLICATION_CREDENTIALS: Polaris flags that variable set to any
    // literal value as a leaked secret, though it holds a path.
    const file = gcs ? 'application_default_credentials.json' : 'config.json';
    // Readable by the runtime's group only (fsGroup), as the ModelService's other Secret volumes are.
    const volume = kplus.Volume.fromSecret(scope, 'ModelCredentialsVolume', secret, {
      name: 'model-credentials', defaultMode: 0o440, items: { [this.options.key ?? (gcs ? 'key.json' : '.dockerconfigjson')]: { path: file } },
    });
    return {
      env: { [gcs ? 'CLOUDSDK_CONFIG' : 'DOCKER_CONFIG']: kplus.EnvValue.fromValue(MODEL_CREDENTIALS_DIR) },
      volumeMounts: [{ path: MODEL_CREDENTIALS_DIR, volume, readOnly: true }],
      egress: [],
    };
  }
}

class ServiceAccountCredentials extends ModelCredentials {
  readonly description: string;

  constructor(private readonly serviceAccount: kplus.IServiceAccount | string, private readonly name: string) {
    super();
    this.description = `ModelCredentials.fromServiceAccount('${name}')`;
  }

  check(scheme: ModelUriScheme): void {
    if (scheme === 's3' || scheme === 'gs') return;
    const instead = scheme === 'oci'
      ? 'modelship fetch reads registry credentials from a docker config: use ModelCredentials.fromSecret with a kubernetes.io/dockerconfigjson Secret'
      : 'give a pre-signed URL, or use s3:// or gs://';
    throw new Error(`ModelSource.fromUri: 'credentials' (${this.description}) does not apply to ${scheme}:// URIs; ${instead}`);
  }

  bind(scope: Construct, scheme: ModelUriScheme): ModelCredentialsConfig {
    const serviceAccount = typeof this.serviceAccount === 'string'
      ? kplus.ServiceAccount.fromServiceAccountName(scope, 'ModelServiceAccount', this.serviceAccount)
      : this.serviceAccount;
    // The identity is fetched from where each platform hands it out, besides the store itself on 443.
    const egress = scheme === 's3'
      // IRSA trades the token at STS (https, any address); EKS Pod Identity asks its node agent.
      ? [tcpEgress(443), tcpEgress(80, '169.254.170.23/32'), tcpEgress(80, 'fd00:ec2::23/128')]
      // GKE Workload Identity: the metadata server, reached at 169.254.169.254 and, under Dataplane V2, 169.254.169.252:988.
      : [tcpEgress(80, '169.254.169.254/32'), tcpEgress(988, '169.254.169.252/32')];
    return { env: {}, volumeMounts: [], serviceAccount, egress };
  }
}
