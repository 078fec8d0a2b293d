/**
 * `s3://bucket/key`: a GetObject signed with AWS Signature V4 (the `aws4` package signs; nothing here does crypto
 * of its own), against AWS S3 or any S3-compatible store. Configured by the variables the AWS SDKs and CLI read,
 * so a pod set up for them works unchanged:
 * - where: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible store (path-style requests), else AWS in
 *   AWS_REGION / AWS_DEFAULT_REGION (us-east-1 unless told; a bucket elsewhere is followed to its own region once);
 * - who, first found wins: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); AWS_ROLE_ARN +
 *   AWS_WEB_IDENTITY_TOKEN_FILE (IRSA: STS AssumeRoleWithWebIdentity); AWS_CONTAINER_CREDENTIALS_FULL_URI or
 *   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (EKS Pod Identity, ECS).
 */
import { readFile } from 'node:fs/promises';
import type { S3ModelUri } from '@modelship/contract';
import aws4 from 'aws4';
import { UsageError } from './errors';
import { type Env, type ModelStore, PermanentError, isTransientStatus, oneLine, parseJson, readBody, request, statusError } from './fetch-http';

/** A URL from a variable that must hold one, or a usage error naming the variable. */
function endpointUrl(env: Env, name: string): URL | undefined {
  const value = env[name];
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${name} '${value}' is not a URL; give the store's endpoint, e.g. http://minio.storage:9000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${name} '${value}' must be an http:// or https:// URL`);
  return url;
}

/** Variables that only work in pairs: one without the other is a mistake to name before anything is requested. */
function checkPairs(env: Env): void {
  const pairs: Array<[string, string]> = [['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']];
  for (const [a, b] of pairs) {
    if (Boolean(env[a]) !== Boolean(env[b])) throw new UsageError(`${env[a] ? a : b} is set but ${env[a] ? b : a} is not; set both, or neither`);
  }
}

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** Whose they are, for errors: 'the access key AKIA... (AWS_ACCESS_KEY_ID)', 'the role arn:... (...)'. */
  readonly who: string;
}

const NO_CREDENTIALS = 'no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (from a Secret), '
  + 'or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA: a service account annotated with eks.amazonaws.com/role-arn), '
  + 'or run under EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)';

const awsDomain = (region: string) => (region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com');

export class S3Store implements ModelStore {
  private readonly endpoint?: URL;
  /** The region to sign for; replaced by the bucket's own when AWS says it lives elsewhere. */
  private region: string;
  private readonly regionGiven: boolean;

  constructor(private readonly location: S3ModelUri, private readonly env: Env) {
    checkPairs(env);
    this.endpoint = endpointUrl(env, 'AWS_ENDPOINT_URL_S3') ?? endpointUrl(env, 'AWS_ENDPOINT_URL');
    // Checked now, though only IRSA reads it: a wrong variable is a usage error before anything is requested.
    endpointUrl(env, 'AWS_ENDPOINT_URL_STS');
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    this.region = region ?? 'us-east-1';
    this.regionGiven = region !== undefined;
  }

  async open(signal: AbortSignal): Promise<Response> {
    const credentials = await this.credentials(signal);
    let response = await this.get(credentials, signal);
    // AWS answers a request signed for the wrong region with the bucket's region in a header: following it once
    // means AWS_REGION only saves a round trip.
    const bucketRegion = response.headers.get('x-amz-bucket-region');
    if (!response.ok && !this.endpoint && bucketRegion && bucketRegion !== this.region && [301, 400, 403].includes(response.status)) {
      await response.body?.cancel();
      this.region = bucketRegion;
      response = await this.get(credentials, signal);
    }
    if (response.ok && response.body) return response;
    throw await this.explain(response, credentials);
  }

  /** Path-style for a custom endpoint (what every S3-compatible store takes), virtual-hosted for AWS itself. */
  private url(): URL {
    const key = this.location.key.split('/').map(encodeRfc3986).join('/');
    if (this.endpoint) {
      const base = this.endpoint.pathname.replace(/\/+$/, '');
      return new URL(`${this.endpoint.protocol}//${this.endpoint.host}${base}/${this.location.bucket}/${key}`);
    }
    // A bucket with dots does not match S3's wildcard certificate as a host name: path-style for those.
    const host = `s3.${this.region}.${awsDomain(this.region)}`;
    return this.location.bucket.includes('.')
      ? new URL(`https://${host}/${this.location.bucket}/${key}`)
      : new URL(`https://${this.location.bucket}.${host}/${key}`);
  }

  private async get(credentials: Credentials, signal: AbortSignal): Promise<Response> {
    const url = this.url();
    const signed = aws4.sign({ host: url.host, path: url.pathname, service: 's3', region: this.region, method: 'GET' }, {
      accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken,
    });
    const headers = Object.fromEntries(Object.entries(signed.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'host')) as Record<string, string>;
    return request(url, { headers, signal, redirect: 'manual' }, this.endpoint ? `the S3 endpoint ${this.endpoint.origin}` : undefined);
  }

  /** S3's XML error as one line that says what to fix. */
  private async explain(response: Response, credentials: Credentials): Promise<Error> {
    const body = await readBody(response);
    const code = xmlText(body, 'Code') ?? '';
    const message = xmlText(body, 'Message') ?? '';
    const { bucket, key } = this.location;
    const who = credentials.who;
    const where = this.endpoint ? ` at ${this.endpoint.origin} (AWS_ENDPOINT_URL_S3)` : ` in ${this.region}`;
    const fixes: Record<string, string> = {
      NoSuchKey: `there is no object '${key}' in bucket '${bucket}'; check the key in the URI`,
      NoSuchBucket: `there is no bucket '${bucket}'${where}; check the bucket name${this.endpoint ? ' and the endpoint' : ''}`,
      // S3 answers 403 rather than 404 for a missing key to whoever may not list the bucket.
      AccessDenied: `${who} lacks s3:GetObject on arn:aws:s3:::${bucket}/${key}, or the object does not exist and it may not list the bucket; `
        + 'allow s3:GetObject in the identity\'s IAM policy or the bucket policy, and check the key',
      AllAccessDisabled: `all access to bucket '${bucket}' is disabled`,
      InvalidAccessKeyId: `the store does not know ${who}; check the key${this.endpoint ? ' and AWS_ENDPOINT_URL_S3' : ''}`,
      SignatureDoesNotMatch: `the secret access key does not belong to ${who}; check AWS_SECRET_ACCESS_KEY`,
      ExpiredToken: `the session token of ${who} has expired; renew AWS_SESSION_TOKEN, or use long-lived keys or a role`,
      InvalidToken: `the session token of ${who} is not valid; check AWS_SESSION_TOKEN`,
      TokenRefreshRequired: `the session token of ${who} has expired; renew AWS_SESSION_TOKEN`,
      RequestTimeTooSkewed: 'this machine\'s clock is too far from the store\'s; fix the node\'s time (NTP)',
      PermanentRedirect: `bucket '${bucket}' is in another region than ${this.region}; set AWS_REGION to the bucket's region`,
      AuthorizationHeaderMalformed: `the request was signed for ${this.region}, not the bucket's region; set AWS_REGION to the bucket's region`,
    };
    const known = fixes[code];
    let detail = known;
    if (!detail && response.status === 404) detail = `there is no object '${key}' in bucket '${bucket}'${where}`;
    if (!detail && response.status === 403) detail = `${who} may not read s3://${bucket}/${key}`;
    if (code === 'PermanentRedirect' && !this.regionGiven) detail += ' (AWS_REGION is not set: us-east-1 was tried)';
    // S3's own message only where there is no better explanation: it restates the code ('The specified key does not exist.').
    const what = [code, !known && message ? `'${oneLine(message, 200)}'` : ''].filter(Boolean).join(' ');
    const error = statusError(response, [what, detail].filter(Boolean).join(': '));
    // Throttling and internal errors pass; the rest will answer the same next time.
    return code === 'SlowDown' || code === 'InternalError' || code === 'ServiceUnavailable' ? new Error(error.message) : error;
  }

  // ---- credentials ---------------------------------------------------------------------------------------------------

  private async credentials(signal: AbortSignal): Promise<Credentials> {
    const env = this.env;
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      return {
        accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined,
        who: `the access key ${env.AWS_ACCESS_KEY_ID} (AWS_ACCESS_KEY_ID)`,
      };
    }
    if (env.AWS_ROLE_ARN && env.AWS_WEB_IDENTITY_TOKEN_FILE) return this.assumeRoleWithWebIdentity(env.AWS_ROLE_ARN, env.AWS_WEB_IDENTITY_TOKEN_FILE, signal);
    if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) return this.containerCredentials(signal);
    throw new PermanentError(NO_CREDENTIALS);
  }

  /** IRSA: the projected service-account token traded at STS for the role's temporary credentials. */
  private async assumeRoleWithWebIdentity(roleArn: string, tokenFile: string, signal: AbortSignal): Promise<Credentials> {
    let token: string;
    try {
      // Read each attempt: the kubelet rotates the projected token in place.
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new PermanentError(`cannot read AWS_WEB_IDENTITY_TOKEN_FILE '${tokenFile}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const region = this.env.AWS_REGION || this.env.AWS_DEFAULT_REGION;
    const sts = endpointUrl(this.env, 'AWS_ENDPOINT_URL_STS') ?? endpointUrl(this.env, 'AWS_ENDPOINT_URL')
      ?? new URL(region ? `https://sts.${region}.${awsDomain(region)}/` : 'https://sts.amazonaws.com/');
    const body = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn,
      RoleSessionName: this.env.AWS_ROLE_SESSION_NAME || `modelship-fetch-${Date.now()}`, WebIdentityToken: token,
    });
    const response = await request(sts, {
      method: 'POST', body, signal, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/xml' },
    }, `STS at ${sts.origin}`);
    const xml = await readBody(response);
    if (!response.ok) {
      const code = xmlText(xml, 'Code') ?? '';
      const message = oneLine(xmlText(xml, 'Message') ?? xml, 200);
      const fix = code === 'InvalidIdentityToken' || code === 'ExpiredTokenException'
        ? 'the service-account token in AWS_WEB_IDENTITY_TOKEN_FILE was refused; check that the cluster\'s OIDC provider is registered in IAM'
        : 'the role\'s trust policy must allow this cluster\'s OIDC provider and this service account (sts:AssumeRoleWithWebIdentity)';
      const error = statusError(response, `STS refused AssumeRoleWithWebIdentity for ${roleArn}: ${code} '${message}'; ${fix}`);
      // A token refreshed by the kubelet, or an identity provider that was briefly unreachable, may pass next time.
      throw ['ExpiredTokenException', 'IDPCommunicationError', 'Throttling'].includes(code) || isTransientStatus(response.status) ? new Error(error.message) : error;
    }
    const accessKeyId = xmlText(xml, 'AccessKeyId');
    const secretAccessKey = xmlText(xml, 'SecretAccessKey');
    const sessionToken = xmlText(xml, 'SessionToken');
    if (!accessKeyId || !secretAccessKey || !sessionToken) throw new Error(`STS answered AssumeRoleWithWebIdentity without credentials: '${oneLine(xml, 200)}'`);
    return { accessKeyId, secretAccessKey, sessionToken, who: `the role ${roleArn} (AWS_ROLE_ARN, assumed with AWS_WEB_IDENTITY_TOKEN_FILE)` };
  }

  /** EKS Pod Identity and ECS: a local agent hands out the role's credentials, authorized by a token. */
  private async containerCredentials(signal: AbortSignal): Promise<Credentials> {
    const env = this.env;
    const uri = env.AWS_CONTAINER_CREDENTIALS_FULL_URI || `http://169.254.170.2${env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}`;
    const variable = env.AWS_CONTAINER_CREDENTIALS_FULL_URI ? 'AWS_CONTAINER_CREDENTIALS_FULL_URI' : 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI';
    let authorization = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    if (env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) {
      try {
        authorization = (await readFile(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, 'utf8')).trim();
      } catch (error) {
        throw new PermanentError(`cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '${env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
    const response = await request(uri, { signal, headers: authorization ? { authorization } : {} }, `the container credentials agent (${variable})`);
    const text = await readBody(response);
    if (!response.ok) throw statusError(response, `the container credentials agent (${variable}) refused: '${oneLine(text, 200)}'`);
    const json = parseJson(text) as { AccessKeyId?: string; SecretAccessKey?: string; Token?: string } | undefined;
    if (!json?.AccessKeyId || !json.SecretAccessKey) throw new Error(`the container credentials agent (${variable}) answered without credentials`);
    return { accessKeyId: json.AccessKeyId, secretAccessKey: json.SecretAccessKey, sessionToken: json.Token, who: `the role the container credentials agent (${variable}) gave` };
  }
}

/** encodeURIComponent plus the characters it leaves that SigV4's canonical form encodes: the signed path and the sent path must agree. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The text of the first `<tag>` in an XML document (S3 and STS answer in XML), with the five entities decoded. */
function xmlText(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!match) return undefined;
  return match[1].replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi, (entity, name: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
    if (named[name.toLowerCase()]) return named[name.toLowerCase()];
    const code = name[1].toLowerCase() === 'x' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : entity;
  });
}
