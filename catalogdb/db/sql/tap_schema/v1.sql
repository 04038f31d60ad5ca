-- TAP_SCHEMA 1.1 tables, created empty; catalogdb db init fills them from the declarations. Frozen: never edited once released.
CREATE SCHEMA IF NOT EXISTS tap_schema;
CREATE TABLE IF NOT EXISTS tap_schema.schemas ("schema_name" text, "utype" text, "description" text, "schema_index" integer);
COMMENT ON TABLE tap_schema.schemas IS 'Schemas published by this service';
CREATE TABLE IF NOT EXISTS tap_schema.tables ("schema_name" text, "table_name" text, "table_type" text, "utype" text, "description" text, "table_index" integer);
COMMENT ON TABLE tap_schema.tables IS 'Tables published by this service';
CREATE TABLE IF NOT EXISTS tap_schema.columns ("table_name" text, "column_name" text, "utype" text, "ucd" text, "unit" text, "description" text, "datatype" text, "arraysize" text, "xtype" text, "size" integer, "principal" integer, "indexed" integer, "std" integer, "column_index" integer);
COMMENT ON TABLE tap_schema.columns IS 'Columns of the published tables';
CREATE TABLE IF NOT EXISTS tap_schema.keys ("key_id" text, "from_table" text, "target_table" text, "utype" text, "description" text);
COMMENT ON TABLE tap_schema.keys IS 'Foreign keys between the published tables';
CREATE TABLE IF NOT EXISTS tap_schema.key_columns ("key_id" text, "from_column" text, "target_column" text);
COMMENT ON TABLE tap_schema.key_columns IS 'Column pairs of the foreign keys';
