import Testing
@testable import ReindexKit

/// Issue 16: which primaries are PostgreSQL URIs, and how messages show them (no password).
struct PrimarySourceTests {
    @Test func uriSchemesChooseThePostgresPrimary() {
        #expect(PrimaryLocation.isPostgres("postgresql://u@h/db"))
        #expect(PrimaryLocation.isPostgres("POSTGRES://u@h/db"))
        #expect(PrimaryLocation.isPostgres("postgresql:///app?host=/run/postgresql"))
        #expect(!PrimaryLocation.isPostgres("/srv/app.db"))
        #expect(!PrimaryLocation.isPostgres("postgresql.db"))
    }

    @Test func displayNeverShowsAPassword() {
        #expect(PrimaryLocation.display("postgresql://user:s3cret@host:5432/db") == "postgresql://user@host:5432/db")
        #expect(PrimaryLocation.display("postgres://user:p%40ss:word@host/db?sslmode=require") == "postgres://user@host/db?sslmode=require")
        #expect(PrimaryLocation.display("postgresql://user@host/db?password=s3cret&sslmode=require") == "postgresql://user@host/db?sslmode=require")
        #expect(PrimaryLocation.display("postgresql:///app?host=/run/postgresql&Password=x") == "postgresql:///app?host=/run/postgresql")
        #expect(PrimaryLocation.display("postgresql://user@host/db") == "postgresql://user@host/db")
        #expect(PrimaryLocation.display("/srv/app.db") == "/srv/app.db")
    }

    @Test func jobFilesKeepURIsAsWritten() throws {
        var job = try JobConfig.parse(yaml: """
            name: t
            primary: postgresql://reader@db.internal/app?sslmode=require
            output: out/vectors.db
            sources:
              - name: m
                query: SELECT id, content AS text FROM "Message"
            model:
              provider: openai
              url: http://127.0.0.1:9
              name: m
              dimensions: 8
            """, file: "/jobs/job.yml")
        #expect(job.primary == "postgresql://reader@db.internal/app?sslmode=require")
        try job.apply(primary: "postgres:///other", output: nil, modelURL: nil)
        #expect(job.primary == "postgres:///other")
    }
}
