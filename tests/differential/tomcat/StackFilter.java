// Marks every answer of the Tomcat web application (handlers and the default servlet's 404)
// with X-Diff-Stack, so the harness can tell the stack's answers from the gateway's.
import java.io.IOException;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletResponse;

public class StackFilter implements Filter {
    @Override
    public void doFilter(ServletRequest req, ServletResponse resp, FilterChain chain)
            throws IOException, ServletException {
        ((HttpServletResponse) resp).setHeader("X-Diff-Stack", "tomcat");
        chain.doFilter(req, resp);
    }
}
