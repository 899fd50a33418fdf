import { Module, type DynamicModule } from '@nestjs/common';
import { SAMPLE_APP_CONFIG, type SampleAppConfig } from './sample-app-config.js';

/** Makes the {@link SampleAppConfig} injectable everywhere, including in `RedisCacheModule.forRootAsync`. */
@Module({})
export class SampleAppConfigModule {
  static forRoot(config: SampleAppConfig): DynamicModule {
    return {
      module: SampleAppConfigModule,
      global: true,
      providers: [{ provide: SAMPLE_APP_CONFIG, useValue: config }],
      exports: [SAMPLE_APP_CONFIG],
    };
  }
}
