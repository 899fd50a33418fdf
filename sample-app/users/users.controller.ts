import { Body, Controller, Delete, Get, HttpCode, NotFoundException, Param, ParseIntPipe, Put } from '@nestjs/common';
import { ParseBodyPipe } from '../common/parse-body.pipe.js';
import { parseUpdateUser } from './update-user.input.js';
import type { UpdateUserInput, User } from './user.model.js';
import { UsersService } from './users.service.js';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get(':id')
  async findOne(@Param('id', ParseIntPipe) id: number): Promise<User> {
    const user = await this.users.findById(id);
    if (!user) throw new NotFoundException(`User ${id} not found`);
    return user;
  }

  @Put(':id')
  update(
    @Param('id', ParseIntPipe) id: number,
    @Body(new ParseBodyPipe(parseUpdateUser)) patch: UpdateUserInput,
  ): Promise<User> {
    return this.users.update(id, patch);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', ParseIntPipe) id: number): Promise<void> {
    return this.users.remove(id);
  }
}
