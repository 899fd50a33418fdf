import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { InjectSampleAppConfig, type SampleAppConfig } from '../config/sample-app-config.js';

/**
 * Lets a request through when it carries `x-admin-token: <ADMIN_TOKEN>`, or when no ADMIN_TOKEN is
 * configured (local development). Returning false makes Nest answer 403.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(@InjectSampleAppConfig() config: SampleAppConfig) {
    this.expected = config.adminToken ? Buffer.from(config.adminToken) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-admin-token'];
    if (typeof header !== 'string') return false;
    const given = Buffer.from(header);
    return given.length === this.expected.length && timingSafeEqual(given, this.expected);
  }
}
