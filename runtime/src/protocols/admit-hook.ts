/**
 * What both REST doors share around the core: the fastify onRequest hook that refuses a request before its body is
 * read, when the answer is already known (InferenceCore.admit: unknown model or version, full queue), and what the
 * core is told of a request besides its body.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Addressed, InferenceCore } from '../core/inference';

type Target = (request: FastifyRequest) => { model: string; version?: string } | undefined;

/** `target` names the model and version a request addresses, or undefined when its path names none. */
export function admitHook(core: InferenceCore, target: Target) {
  return hook(target, (addressed) => core.admit(addressed));
}

/** The same for explanations, which have their own limit (InferenceCore.admitExplanation). */
export function explainAdmitHook(core: InferenceCore, target: Target) {
  return hook(target, (addressed) => core.admitExplanation(addressed));
}

function hook(target: Target, admit: (addressed: Addressed) => void) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    try {
      const addressed = target(request);
      if (addressed) admit({ protocol: 'rest', ...addressed });
      done();
    } catch (error) {
      done(error as Error);
    }
  };
}

/**
 * A REST request as the core addresses it: the model and version its path names, its headers (a caller's trace
 * context) and when it arrived (fastify's clock starts as the request comes in, before its body is read).
 */
export function restAddressed(request: FastifyRequest, reply: FastifyReply, target: { model: string; version?: string }): Addressed {
  return { protocol: 'rest', model: target.model, version: target.version, carrier: request.headers, arrivedAt: performance.now() - reply.elapsedTime };
}
