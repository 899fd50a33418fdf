/** A post as the API returns it. */
export interface Post {
  id: number;
  userId: number;
  title: string;
  body: string;
  likes: number;
  createdAt: Date;
}

/** Body of `POST /posts`. */
export interface CreatePostInput {
  userId: number;
  title: string;
  body: string;
}
