-- The PIN as a salted scrypt hash, never in plain text (issue #24). SQL cannot derive scrypt:
-- pin_record() is system_databse.pin_hash.hash_pin, registered by create_system_db on the
-- connection that applies this file (which also zeroes the replaced bytes and empties the WAL).
-- A value that is already a hash record is left alone, so the update is harmless to repeat.
UPDATE system_config SET value = pin_record(value) WHERE key = 'pin' AND value NOT LIKE '$scrypt$%';
