import { Injectable } from '@nestjs/common';
import { Cacheable } from 'nestjs-redis-cache';

export interface Item {
  id: string;
  load: number;
}

@Injectable()
export class AppService {
  loads = 0;
  hellos = 0;

  @Cacheable({ key: 'item:{0}' })
  async findItem(id: string): Promise<Item> {
    this.loads++; // runs on a miss only
    return { id, load: this.loads };
  }

  getHello(): string {
    this.hellos++;
    return 'Hello World!';
  }
}
