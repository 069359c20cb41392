// Tomcat 10 upstream of the differential test (tests/differential/run.sh).
// One servlet class, mapped (web.xml) as the protected handler on /pub/secret and /pub/secret/*
// and as the public handler on /pub/*. It records what the container resolved: the method it
// dispatched on, servletPath + pathInfo, the headers as getHeaderNames/getHeaders expose them.
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;

import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

public class RecordServlet extends HttpServlet {
    private static final Object LOCK = new Object();

    static String json(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                default:
                    if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static String joined(HttpServletRequest req, String name) {
        List<String> values = Collections.list(req.getHeaders(name));
        return values.isEmpty() ? null : String.join(", ", values);
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp)
            throws ServletException, IOException {
        String handler = getInitParameter("handler");
        String path = req.getServletPath() + (req.getPathInfo() == null ? "" : req.getPathInfo());
        StringBuilder r = new StringBuilder("{\"stack\":\"tomcat\"");
        r.append(",\"handler\":").append(json(handler));
        r.append(",\"method\":").append(json(req.getMethod()));
        r.append(",\"path\":").append(json(path));
        r.append(",\"uri\":").append(json(req.getRequestURI()));
        r.append(",\"diff_id\":").append(json(req.getHeader("X-Diff-Id")));
        r.append(",\"identity\":{\"user\":").append(json(joined(req, "user_id")));
        r.append(",\"group\":").append(json(joined(req, "group_id"))).append('}');
        r.append(",\"headers\":[");
        boolean first = true;
        for (String name : Collections.list(req.getHeaderNames())) {
            for (String value : Collections.list(req.getHeaders(name))) {
                if (!first) r.append(',');
                first = false;
                r.append('[').append(json(name)).append(',').append(json(value)).append(']');
            }
        }
        r.append("],\"vars\":{\"remote_user\":").append(json(req.getRemoteUser()));
        r.append(",\"auth_type\":").append(json(req.getAuthType())).append("}}\n");
        String file = System.getProperty("diff.records");
        synchronized (LOCK) {
            try (Writer w = new OutputStreamWriter(new FileOutputStream(file, true), StandardCharsets.UTF_8)) {
                w.write(r.toString());
            }
        }
        resp.setContentType("application/json");
        resp.getWriter().write("{\"stack\":\"tomcat\",\"handler\":" + json(handler) + "}");
    }
}
