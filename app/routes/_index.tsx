export default function Index() {
  return (
    <main className="page">
      <h1>KYC Desk</h1>
      <p>The console is starting up.</p>
    </main>
  );
}
