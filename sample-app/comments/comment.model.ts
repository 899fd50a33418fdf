/** A comment as the API returns it. */
export interface Comment {
  id: number;
  postId: number;
  userId: number;
  body: string;
  createdAt: Date;
}

/** Body of `POST /posts/:id/comments`. */
export interface CreateCommentInput {
  userId: number;
  body: string;
}
