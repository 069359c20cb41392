use super::*;

fn client(text: &str) -> Source {
    Source::Client(text.parse().expect("test address"))
}

fn complete(buf: &[u8]) -> (Source, usize) {
    match parse(buf) {
        Ok(Parsed::Complete { source, len }) => (source, len),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

/// A v2 header: command (0 LOCAL, 1 PROXY), family byte, payload.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn v4_block() -> Vec<u8> {
    let mut block = vec![203, 0, 113, 7, 10, 0, 0, 1];
    block.extend_from_slice(&4242u16.to_be_bytes());
    block.extend_from_slice(&443u16.to_be_bytes());
    block
}

#[test]
fn v1_tcp4_and_tcp6_give_the_source_and_leave_what_follows() {
    let buf = b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\r\nGET / HTTP/1.1\r\n";
    let (source, len) = complete(buf);
    assert_eq!(source, client("203.0.113.7:4242"));
    assert_eq!(&buf[len..], b"GET / HTTP/1.1\r\n");
    let (source, _) = complete(b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n");
    assert_eq!(source, client("[2001:db8::7]:65535"));
}

#[test]
fn v1_unknown_is_local_whatever_follows_it() {
    assert_eq!(complete(b"PROXY UNKNOWN\r\n").0, Source::Local);
    let line = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_eq!(complete(line), (Source::Local, line.len()));
}

#[test]
fn v1_malformed_lines_are_refused() {
    for line in [
        &b"PROXY TCP4 203.0.113.7 10.0.0.1 4242\r\n"[..],
        b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443 9\r\n",
        b"PROXY TCP4  203.0.113.7 10.0.0.1 4242 443\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 4242 443\r\n",
        b"PROXY TCP6 203.0.113.7 2001:db8::1 4242 443\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.256 4242 443\r\n",
        b"PROXY TCP4 203.0.113.007 10.0.0.1 4242 443\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 04242 443\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 +42 443\r\n",
        b"PROXY UDP4 203.0.113.7 10.0.0.1 4242 443\r\n",
        b"PROXY tcp4 203.0.113.7 10.0.0.1 4242 443\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\rX",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\n",
        b"PROXY \xff\r\n",
        b"PROXY \r\n",
    ] {
        let result = parse(line);
        assert!(
            matches!(
                result,
                Err(HeaderError::V1Malformed) | Ok(Parsed::Incomplete { .. })
            ) && !matches!(result, Ok(Parsed::Complete { .. })),
            "{:?}: {result:?}",
            String::from_utf8_lossy(line)
        );
    }
    // Lines that are complete but wrong are errors, not "need more".
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
        Err(HeaderError::V1Malformed)
    );
}

#[test]
fn v1_is_bounded_at_107_bytes() {
    // The spec's worst case: UNKNOWN with full-length optional fields.
    let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(longest.len(), V1_MAX);
    assert_eq!(complete(longest), (Source::Local, V1_MAX));
    let tcp6 = [b"PROXY TCP6", &longest[13..]].concat();
    assert_eq!(
        complete(&tcp6).0,
        client("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
    );
    let mut endless = b"PROXY TCP4 ".to_vec();
    endless.resize(200, b'1');
    assert_eq!(parse(&endless), Err(HeaderError::V1TooLong));
    assert_eq!(parse(&endless[..V1_MAX]), Err(HeaderError::V1TooLong));
}

#[test]
fn every_prefix_of_a_valid_header_is_incomplete_never_an_error() {
    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\r\n".to_vec();
    let v2 = v2(1, 0x11, &v4_block());
    for header in [v1, v2] {
        for end in 0..header.len() {
            match parse(&header[..end]) {
                Ok(Parsed::Incomplete { total }) => assert!(total > end && total <= header.len()),
                other => panic!("prefix of {end} bytes: {other:?}"),
            }
        }
        assert_eq!(complete(&header).1, header.len());
    }
}

#[test]
fn v2_inet_and_inet6_give_the_source() {
    let header = v2(1, 0x11, &v4_block());
    assert_eq!(complete(&header), (client("203.0.113.7:4242"), 28));
    let mut block = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&[0x10, 0x92, 0x01, 0xbb]);
    assert_eq!(
        complete(&v2(1, 0x21, &block)).0,
        client("[2001:db8::7]:4242")
    );
}

#[test]
fn v2_tlvs_are_skipped_and_counted_in_the_length() {
    let mut payload = v4_block();
    payload.extend_from_slice(&[0xEA, 0x00, 0x03, b'v', b'p', b'c']);
    let mut buf = v2(1, 0x11, &payload);
    let header_len = buf.len();
    buf.extend_from_slice(b"\x16\x03\x01");
    assert_eq!(complete(&buf), (client("203.0.113.7:4242"), header_len));
}

#[test]
fn v2_local_unspec_and_unix_keep_the_socket_peer() {
    assert_eq!(complete(&v2(0, 0x00, &[])).0, Source::Local);
    assert_eq!(complete(&v2(0, 0x11, &v4_block())).0, Source::Local);
    assert_eq!(complete(&v2(1, 0x00, &[])).0, Source::Local);
    assert_eq!(complete(&v2(1, 0x31, &[0; 216])).0, Source::Local);
}

#[test]
fn v2_bad_headers_are_refused() {
    let mut wrong_version = v2(1, 0x11, &v4_block());
    wrong_version[12] = 0x11;
    assert_eq!(parse(&wrong_version), Err(HeaderError::V2Command(0x11)));
    assert_eq!(
        parse(&v2(2, 0x11, &v4_block())),
        Err(HeaderError::V2Command(0x22))
    );
    assert_eq!(
        parse(&v2(1, 0x12, &v4_block())),
        Err(HeaderError::V2Family(0x12))
    );
    assert_eq!(
        parse(&v2(1, 0x41, &v4_block())),
        Err(HeaderError::V2Family(0x41))
    );
    assert_eq!(
        parse(&v2(1, 0x11, &v4_block()[..11])),
        Err(HeaderError::V2Short)
    );
    assert_eq!(parse(&v2(1, 0x21, &v4_block())), Err(HeaderError::V2Short));
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(parse(&huge), Err(HeaderError::V2TooLong(0xffff)));
}

#[test]
fn anything_else_has_no_signature() {
    for start in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"PROPFIND / HTTP/1.1",
        b"PROXY\r\n",
        b"\r\n\r\n\0\r\nQUIT\r",
    ] {
        assert_eq!(parse(start), Err(HeaderError::NoSignature), "{start:?}");
        assert_eq!(signature(start), Some(false), "{start:?}");
    }
    assert_eq!(signature(b"PRO"), None);
    assert_eq!(signature(b"\r\n\r\n"), None);
    assert_eq!(signature(b""), None);
    assert_eq!(signature(b"PROXY TCP4"), Some(true));
    assert_eq!(signature(&V2_SIGNATURE), Some(true));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every result is fine, a panic is not.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..20_000 {
        let mut buf = if round % 2 == 0 {
            V2_SIGNATURE.to_vec()
        } else {
            b"PROXY ".to_vec()
        };
        let extra = (round % 120) as usize;
        for _ in 0..extra {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buf.push(state as u8);
        }
        let _ = parse(&buf);
        let _ = signature(&buf);
    }
}

#[tokio::test]
async fn read_consumes_exactly_the_header_even_when_split() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let v2_header = v2(1, 0x11, &v4_block());
    let sender = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut one = TcpStream::connect(addr).await.unwrap();
        one.write_all(b"PROXY TCP4 203.0.113.7 10.0.")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        one.write_all(b"0.1 4242 443\r\nrest").await.unwrap();
        let mut two = TcpStream::connect(addr).await.unwrap();
        two.write_all(&v2_header[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        two.write_all(&v2_header[10..]).await.unwrap();
        two.write_all(b"rest").await.unwrap();
        (one, two)
    });
    for _ in 0..2 {
        let (mut stream, _) = listener.accept().await.unwrap();
        let source = tokio::time::timeout(Duration::from_secs(5), read(&mut stream))
            .await
            .expect("in time")
            .expect("a header");
        assert_eq!(source, client("203.0.113.7:4242"));
        let mut rest = [0u8; 4];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"rest");
    }
    drop(sender.await.unwrap());
}
