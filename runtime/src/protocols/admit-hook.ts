/**
 * The fastify onRequest hook both REST doors use to refuse a request before its body is read, when the answer is
 * already known (InferenceCore.admit: unknown model or version, full queue).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { InferenceCore } from '../core/inference';

/** `target` names the model and version a request addresses, or undefined when its path names none. */
export function admitHook(core: InferenceCore, target: (request: FastifyRequest) => { model: string; version?: string } | undefined) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    try {
      const addressed = target(request);
      if (addressed) core.admit({ protocol: 'rest', ...addressed });
      done();
    } catch (error) {
      done(error as Error);
    }
  };
}
