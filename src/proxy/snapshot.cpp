#include "proxy/snapshot.hpp"

#include <algorithm>

namespace dg::proxy {

Result<std::shared_ptr<const Snapshot>> build_snapshot(const std::string& config_path) {
  auto cfg = config::load(config_path);
  if (!cfg) return fail(cfg.error().str());
  auto snap = std::make_shared<Snapshot>();
  snap->config = std::make_shared<const config::Config>(std::move(*cfg));
  const config::Config& c = *snap->config;

  std::string errors;
  auto pol = policy::Policy::load(c.policy);
  if (!pol)
    errors += pol.error().str();
  else
    snap->policy = *pol;

  auto au = auth::Authenticator::create(c);
  if (!au)
    errors += au.error().message + "\n";
  else
    snap->auth = *au;

  for (const auto& l : c.listeners) {
    if (!l.tls) {
      snap->listener_tls.push_back(nullptr);
      continue;
    }
    tls::ServerOptions o;
    o.certificate = l.tls->certificate;
    o.key = l.tls->key;
    o.client_ca = l.tls->client_ca;
    o.crl = l.tls->crl;
    // The handshake may demand a certificate only when nothing but mtls can identify the client.
    o.require_client_cert = std::all_of(l.auth.begin(), l.auth.end(),
                                        [](config::AuthMethod m) { return m == config::AuthMethod::Mtls; });
    auto ctx = tls::Context::server(o);
    if (!ctx) {
      errors += c.path + ": listener " + l.name + ": " + ctx.error().message + "\n";
      snap->listener_tls.push_back(nullptr);
    } else {
      snap->listener_tls.push_back(*ctx);
    }
  }
  if (!errors.empty()) {
    if (errors.back() == '\n') errors.pop_back();
    return fail(errors);
  }
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace dg::proxy
