import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { InjectSampleAppConfig, type SampleAppConfig } from '../config/sample-app-config.js';

/**
 * Lets a request through when it carries `x-admin-token: <ADMIN_TOKEN>`, or when no ADMIN_TOKEN is
 * configured, which the config allows only in development (NODE_ENV unset, `development` or `test`).
 * Returning false makes Nest answer 403.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(@InjectSampleAppConfig() config: SampleAppConfig) {
    this.expected = config.adminToken === undefined ? undefined : digest(config.adminToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-admin-token'];
    if (typeof header !== 'string') return false;
    // Digests have one length whatever was sent: timingSafeEqual cannot throw, and the time taken
    // tells nothing about the token, not even its length.
    return timingSafeEqual(digest(header), this.expected);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
