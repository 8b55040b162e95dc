CREATE TABLE "audit_seals" (
	"id" integer PRIMARY KEY NOT NULL,
	"sealed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lower_tx" bigint NOT NULL,
	"lower_seq" bigint NOT NULL,
	"upper_tx" bigint NOT NULL,
	"upper_seq" bigint NOT NULL,
	"first_seq" bigint NOT NULL,
	"last_seq" bigint NOT NULL,
	"row_count" integer NOT NULL,
	"row_ids" uuid[] NOT NULL,
	"row_digests" text[] NOT NULL,
	"digest" text NOT NULL,
	"previous_digest" text,
	"kid" text NOT NULL,
	"signature" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"private_jwk_encrypted" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "seq" bigint NOT NULL GENERATED ALWAYS AS IDENTITY (sequence name "audit_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1);--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "tx_id" bigint DEFAULT (pg_current_xact_id()::text)::bigint NOT NULL;--> statement-breakpoint
CREATE INDEX "audit_seals_upper_idx" ON "audit_seals" USING btree ("upper_tx","upper_seq");--> statement-breakpoint
CREATE INDEX "audit_events_seal_order_idx" ON "audit_events" USING btree ("tx_id","seq");