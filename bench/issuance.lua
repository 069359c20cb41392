-- wrk script: every request is a client_credentials token request (RFC 6749 §4.4) with
-- client_secret_basic; BASIC is the base64 of "id:secret".
wrk.method = "POST"
wrk.path = "/oauth2/token"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
