// The page's error answers (docs/web-api.md): `{ error: { code, message, field? } }`, and request
// bodies checked with zod, naming the first field that is wrong.
import type { FastifyReply } from "fastify";
import type { z } from "zod";

export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  extra: { field?: string; retryAfterS?: number; retryAt?: string } = {},
): FastifyReply {
  const { retryAfterS, retryAt, field } = extra;
  if (retryAfterS !== undefined) reply.header("retry-after", String(retryAfterS));
  return reply.code(status).send({
    error: { code, message, ...(field ? { field } : {}) },
    ...(retryAfterS !== undefined ? { retryAfterS } : {}),
    ...(retryAt !== undefined ? { retryAt } : {}),
  });
}

/** The body as `schema` parses it, or null after answering 400 with what is wrong and where. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown, reply: FastifyReply): z.output<T> | null {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join(".");
  sendError(reply, 400, "VG_BAD_REQUEST", field ? `${field}: ${issue.message}` : issue.message, field ? { field } : {});
  return null;
}
