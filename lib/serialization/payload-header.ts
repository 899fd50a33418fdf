/**
 * The two bytes in front of every payload this package writes to Redis.
 *
 * `0xC1` is the one byte MessagePack never uses and is not a valid UTF-8 lead byte either, so a
 * payload starting with it can be neither a bare MessagePack value nor text (JSON, a plain string)
 * written by another client under the same key. The version byte lets a later format be told apart
 * from this one instead of being misread.
 */
export const PAYLOAD_MAGIC = 0xc1;

/** Version of the body format that follows {@link PAYLOAD_MAGIC}. */
export const PAYLOAD_FORMAT_VERSION = 0x01;

/** Length in bytes of the header (magic byte + format-version byte). */
export const PAYLOAD_HEADER_LENGTH = 2;
