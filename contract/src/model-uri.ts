/**
 * The model URIs `modelship fetch` reads: https:// (or http://), s3://bucket/key, gs://bucket/object and
 * oci://registry/repository:tag (or @sha256:digest). One grammar for both sides: the runtime parses --uri with it
 * and ModelSource.fromUri checks its URI with it at synth time, so a construct never writes a URI fetch refuses.
 */

export const MODEL_URI_SCHEMES = ['https', 'http', 's3', 'gs', 'oci'] as const;
export type ModelUriScheme = (typeof MODEL_URI_SCHEMES)[number];

export interface HttpModelUri {
  readonly scheme: 'https' | 'http';
  readonly url: URL;
}
export interface S3ModelUri {
  readonly scheme: 's3';
  readonly bucket: string;
  /** Taken literally: everything after the bucket's slash, as the AWS CLI reads it. */
  readonly key: string;
}
export interface GcsModelUri {
  readonly scheme: 'gs';
  readonly bucket: string;
  readonly object: string;
}
export interface OciModelUri {
  readonly scheme: 'oci';
  /** The registry as written (`ghcr.io`, `localhost:5000`, `docker.io`), which names its credentials. */
  readonly registry: string;
  /** host[:port] the API is served at (Docker Hub's differs from its name). */
  readonly apiHost: string;
  /** The port written in the URI, if any. */
  readonly port?: number;
  readonly repository: string;
  /** A tag or a `sha256:` digest. */
  readonly reference: string;
}
export type ModelUri = HttpModelUri | S3ModelUri | GcsModelUri | OciModelUri;

const S3_BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const DOCKER_HUB_NAMES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * Parses a model URI, or throws an Error whose message starts with the quoted URI and says what is wrong and how
 * to write it, for the caller to prefix with where the URI came from (`--uri (MODELSHIP_FETCH_URI) `).
 */
export function parseModelUri(uri: string): ModelUri {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1].toLowerCase();
  if (!scheme) throw new Error(`'${uri}' is not a URL; write https://..., s3://BUCKET/KEY, gs://BUCKET/OBJECT or oci://REGISTRY/REPOSITORY:TAG`);
  if (!(MODEL_URI_SCHEMES as readonly string[]).includes(scheme)) {
    throw new Error(`'${uri}' must be https://, http://, s3://, gs:// or oci://, not ${scheme}://`);
  }
  const rest = uri.slice(scheme.length + 3);
  switch (scheme as ModelUriScheme) {
    case 'https':
    case 'http': {
      let url: URL;
      try {
        url = new URL(uri);
      } catch {
        throw new Error(`'${uri}' is not a URL`);
      }
      return { scheme: scheme as 'https' | 'http', url };
    }
    case 's3': {
      const [bucket, key] = splitBucket(rest);
      if (!S3_BUCKET.test(bucket)) throw new Error(`'${uri}': '${bucket}' is not an S3 bucket name (3 to 63 lower-case letters, digits, '.', '-' or '_')`);
      if (key === '' || key.endsWith('/')) throw new Error(`'${uri}' names no object: write s3://${bucket}/<key of the model file>`);
      return { scheme: 's3', bucket, key };
    }
    case 'gs': {
      const [bucket, object] = splitBucket(rest);
      if (!GCS_BUCKET.test(bucket)) throw new Error(`'${uri}': '${bucket}' is not a Cloud Storage bucket name (3 to 222 lower-case letters, digits, '.', '-' or '_')`);
      if (object === '' || object.endsWith('/')) throw new Error(`'${uri}' names no object: write gs://${bucket}/<name of the model file>`);
      return { scheme: 'gs', bucket, object };
    }
    case 'oci':
      return parseOci(uri, rest);
  }
}

function splitBucket(rest: string): [string, string] {
  const slash = rest.indexOf('/');
  return slash < 0 ? [rest, ''] : [rest.slice(0, slash), rest.slice(slash + 1)];
}

function parseOci(uri: string, rest: string): OciModelUri {
  const bad = (why: string) => new Error(`'${uri}' ${why}`);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad('names no repository: write oci://<registry>/<repository>:<tag> or @sha256:<digest>');
  // Docker's rule: a first component with a dot or a port, or localhost, is a registry; otherwise Docker Hub.
  const first = rest.slice(0, slash);
  const isRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const registry = isRegistry ? first : 'docker.io';
  let path = isRegistry ? rest.slice(slash + 1) : rest;
  let reference: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    reference = path.slice(at + 1);
    // A tag beside the digest (repo:tag@sha256:...) is only a label: the digest decides.
    path = path.slice(0, at).replace(/:[^/]*$/, '');
    if (!DIGEST.test(reference)) throw bad(`has the digest '${reference}'; write @sha256: and 64 lower-case hex digits`);
  } else {
    const colon = path.lastIndexOf(':');
    if (colon > path.lastIndexOf('/')) {
      reference = path.slice(colon + 1);
      path = path.slice(0, colon);
      if (!TAG.test(reference)) throw bad(`has the tag '${reference}'; a tag is up to 128 letters, digits, '_', '.' and '-'`);
    }
  }
  if (!reference) throw bad('names no tag or digest: add :<tag> or @sha256:<digest> (no tag means no default here: a model is pinned)');
  const hub = DOCKER_HUB_NAMES.has(registry);
  // Docker Hub's official images live under library/.
  const repository = hub && !path.includes('/') ? `library/${path}` : path;
  if (!REPOSITORY.test(repository)) throw bad(`has the repository '${path}'; a repository is lower-case letters, digits and separators (., _, __, -) between '/'`);
  const port = /:(\d+)$/.exec(registry)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw bad(`has the port ${port}; a port is 1 to 65535`);
  return { scheme: 'oci', registry, apiHost: hub ? 'registry-1.docker.io' : registry, port: port === undefined ? undefined : Number(port), repository, reference };
}
