/** A user as the API returns it. */
export interface User {
  id: number;
  name: string;
  email: string;
  bio: string;
  createdAt: Date;
}

/** Fields `PUT /users/:id` may change; at least one is present. */
export interface UpdateUserInput {
  name?: string;
  email?: string;
  bio?: string;
}
